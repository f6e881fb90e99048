"""`lapis model package`: the context runs with plain Python, without Lapis installed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from jobkit import lapis_cli

SCORE = """\
import json, os

def init():
    global weights
    weights = open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "weights.txt")).read()
    weights = weights.strip()

def run(raw_data):
    return {"weights": weights, "n": len(json.loads(raw_data)["data"])}
"""


def test_packaged_model_serves_without_lapis(lapis_server: Any, tmp_path: Path) -> None:
    name = f"pkg-{uuid.uuid4().hex[:6]}"
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.txt").write_text("w-7\n")
    created = lapis_cli(lapis_server, "model", "create", "--name", name, "--path", str(model))
    assert created.returncode == 0, created.stderr
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(SCORE)
    out = tmp_path / "context"
    res = lapis_cli(
        lapis_server, "model", "package", name, "--version", "1", "--output-path", str(out),
        "--code", str(code), "--scoring-script", "score.py",
        "--environment", "azureml:lapis-minimal@latest", "-o", "json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    files = {Path(p).relative_to(out).as_posix() for p in json.loads(res.stdout)}
    assert {"Dockerfile", "requirements.txt", "lapis_scoring.py", "model/model/weights.txt",
            "code/score.py"} <= files  # fmt: skip
    dockerfile = (out / "Dockerfile").read_text()
    assert "COPY model/ /app/model/" in dockerfile and "/app/code/score.py" in dockerfile
    assert "mlflow-skinny" in (out / "requirements.txt").read_text()

    log = tmp_path / "serve.log"
    with open(log, "wb") as fh:  # -S: no site-packages, so nothing of Lapis can be imported
        proc = subprocess.Popen(
            [sys.executable, "-S", "lapis_scoring.py", "--port", "0", "--model-dir", "model",
             "--scoring-script", "code/score.py"],
            cwd=out, stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while "ready" not in log.read_text().split("listening on", 1)[-1]:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        port = log.read_text().split("listening on ", 1)[1].split()[0].rsplit(":", 1)[1]
        r = httpx.post(f"http://127.0.0.1:{port}/score", json={"data": [1, 2, 3]})
        assert r.status_code == 200 and r.json() == {"weights": "w-7", "n": 3}
    finally:
        proc.kill()
        proc.wait()

    again = lapis_cli(
        lapis_server, "model", "package", name, "--version", "1", "--output-path", str(out)
    )
    assert again.returncode == 1 and "not empty" in again.stderr
    plain = lapis_cli(
        lapis_server, "model", "package", name, "--version", "1",
        "--output-path", str(tmp_path / "other"),
    )  # fmt: skip
    assert plain.returncode == 1 and "not an MLflow model" in plain.stderr
