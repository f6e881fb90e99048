"""The scoring server alone: a real process, a real scoring script, a real MLflow model."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

SCORE = """\
import json, os, time

model = None

def init():
    global model
    time.sleep(1.0)  # a slow model: readiness must say "loading", not fail
    model = open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "weights.txt")).read().strip()

def run(raw_data):
    data = json.loads(raw_data)["data"]
    if data == "boom":
        raise RuntimeError("secret internal detail")
    return {"model": model, "sum": sum(data)}
"""


def start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    log = tmp_path / "instance.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lapis.endpoints.runtime.scoring", "--port", "0", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while "listening on" not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    port = log.read_text().split("listening on ", 1)[1].split()[0].rsplit(":", 1)[1]
    return proc, f"http://127.0.0.1:{port}", log


def wait_ready(url: str, timeout: float = 60) -> list[int]:
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        code = httpx.get(f"{url}/ready").status_code
        seen.append(code)
        if code == 200:
            return seen
        assert time.monotonic() < deadline, "instance never became ready"
        time.sleep(0.05)


@pytest.fixture
def script_instance(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.txt").write_text("w-42\n")
    (tmp_path / "score.py").write_text(SCORE)
    proc, url, log = start(
        tmp_path, "--model-dir", str(model), "--scoring-script", str(tmp_path / "score.py")
    )
    try:
        yield url, log
    finally:
        proc.kill()
        proc.wait()


def test_scoring_script_init_run_and_errors(script_instance: tuple[str, Path]) -> None:
    url, log = script_instance
    assert httpx.get(f"{url}/health").status_code == 200  # alive while loading
    seen = wait_ready(url)
    assert seen[0] == 503 and seen[-1] == 200
    r = httpx.post(f"{url}/score", content=b'{"data": [1, 2, 3]}')
    assert r.status_code == 200 and r.json() == {"model": "w-42", "sum": 6}
    bad = httpx.post(f"{url}/score", content=b'{"data": "boom"}')
    assert bad.status_code == 500
    body = bad.json()
    assert body["request_id"] and "secret internal detail" not in bad.text
    assert "Traceback" not in bad.text
    time.sleep(0.2)
    assert "secret internal detail" in log.read_text()
    assert body["request_id"] in log.read_text()
    # A body declared as JSON that does not parse is the caller's mistake: 400 with the
    # parser's reason, and run() is never called with it.
    broken = httpx.post(
        f"{url}/score", content=b'{"data": [1, 2', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400, broken.text
    assert "not valid JSON" in broken.json()["error"] and broken.json()["request_id"]
    # Successful probes stay out of the instance log; scoring requests are in it.
    text = log.read_text()
    assert '"GET /ready HTTP/1.1" 200' not in text and '"POST /score HTTP/1.1" 200' in text


def test_mlflow_model_without_script(tmp_path: Path) -> None:
    import mlflow.sklearn
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]], [1.0, 1.0, 4.0])
    mlflow.sklearn.save_model(model, str(tmp_path / "m"))
    proc, url, _ = start(tmp_path, "--model-dir", str(tmp_path / "m"), "--mlflow-model")
    try:
        wait_ready(url)
        azure = httpx.post(
            f"{url}/score", json={"input_data": {"columns": [0, 1], "data": [[3.0, 3.0]]}}
        )
        assert azure.status_code == 200, azure.text
        assert azure.json()[0] == pytest.approx(6.0)
        split = httpx.post(
            f"{url}/score", json={"dataframe_split": {"columns": [0, 1], "data": [[1.0, 1.0]]}}
        )
        assert split.status_code == 200 and split.json()[0] == pytest.approx(2.0)
        malformed = httpx.post(f"{url}/score", content=b"{not json")
        assert malformed.status_code == 400 and "bad request" in malformed.json()["error"]
        wrong = httpx.post(f"{url}/score", json={"rows": []})
        assert wrong.status_code == 400 and "input_data" in wrong.json()["error"]
    finally:
        proc.kill()
        proc.wait()
