"""What Lapis runs inside a user's environment works on every Python from 3.8 to 3.13.

The scoring server (``lapis/endpoints/runtime/scoring.py``) and the batch driver
(``batch_driver.py``) are copied into deployments and batch jobs and run by the
environment's own interpreter — Python 3.8 in an environment built from an
older conda file. Each interpreter this host has (on PATH, uv-managed or
pyenv's) runs both, with a scoring script written the way Azure's are.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lapis.endpoints import runtime
from lapis.specs.batch import BatchDeploymentSpec

VERSIONS = [(3, minor) for minor in range(8, 14)]


def interpreters() -> dict[str, str]:
    """``"3.8"`` → an interpreter of that version, for each version this host has."""
    candidates = [sys.executable]
    for minor in range(8, 14):
        found = shutil.which(f"python3.{minor}")
        if found:
            candidates.append(found)
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += [str(p) for p in sorted(pyenv.glob("3.*/bin/python3"))]
    uv_root = Path.home() / ".local" / "share" / "uv" / "python"
    candidates += [str(p) for p in sorted(uv_root.glob("cpython-3.*/bin/python3"))]
    found_by_version: dict[str, str] = {}
    for exe in candidates:
        try:
            out = subprocess.run(
                [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=20,
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out and tuple(int(x) for x in out.split(".")) in VERSIONS:
            found_by_version.setdefault(out, exe)
    return dict(sorted(found_by_version.items(), key=lambda kv: int(kv[0].split(".")[1])))


FOUND = interpreters()
MISSING = [f"{a}.{b}" for a, b in VERSIONS if f"{a}.{b}" not in FOUND]
if MISSING:  # loud: the check runs on what this host has; CI has 3.8 to 3.13
    print(f"\nNOTE tests/compat/test_pythons.py: no Python {', '.join(MISSING)} on this host")

SCORE = """\
import json
import os


def init():
    global weights
    path = os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model/weights.txt")
    weights = open(path).read().strip()


def run(raw_data):
    return {"weights": weights, "rows": len(json.loads(raw_data)["data"])}
"""

BATCH_SCORE = """\
import os
from pathlib import Path


def init():
    global factor
    factor = int(Path(os.environ["AZUREML_MODEL_DIR"], "model", "factor.txt").read_text())


def run(mini_batch):
    Path(os.environ["AZUREML_BI_OUTPUT_PATH"], "touched").write_text("yes")
    return [[Path(p).name, int(Path(p).read_text()) * factor] for p in mini_batch]
"""


@pytest.mark.parametrize("version", list(FOUND))
def test_the_scoring_server_runs(version: str, tmp_path: Path) -> None:
    model = tmp_path / "container" / "model"
    model.mkdir(parents=True)
    (model / "weights.txt").write_text("w-3\n")
    (tmp_path / "score.py").write_text(SCORE)
    server = runtime.ship(runtime.SCORING, tmp_path)  # with its companion modules
    port_file = tmp_path / "port"
    argv = [FOUND[version], str(server), "--port", "0"]
    argv += ["--port-file", str(port_file), "--model-dir", str(tmp_path / "container")]
    argv += ["--scoring-script", str(tmp_path / "score.py")]
    env = {**os.environ, "AZUREML_MODEL_DIR": str(tmp_path / "container")}
    with open(tmp_path / "log.txt", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None, (tmp_path / "log.txt").read_text()
            assert time.monotonic() < deadline, (tmp_path / "log.txt").read_text()
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text().strip()}"
        while httpx.get(url + "/ready", timeout=5).status_code != 200:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        answer = httpx.post(url + "/score", json={"data": [[1], [2]]}, timeout=10)
        assert answer.status_code == 200, (tmp_path / "log.txt").read_text()
        assert answer.json() == {"weights": "w-3", "rows": 2}
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.parametrize("version", list(FOUND))
def test_the_batch_driver_runs(version: str, tmp_path: Path) -> None:
    code, data, out = tmp_path / "code", tmp_path / "data", tmp_path / "out"
    model = tmp_path / "container" / "model"
    for folder in (code, data, model):
        folder.mkdir(parents=True)
    (model / "factor.txt").write_text("4")
    for i in range(5):
        (data / f"f{i}.txt").write_text(str(i))
    (code / "score.py").write_text(BATCH_SCORE)
    runtime.ship(runtime.BATCH, code)
    spec = BatchDeploymentSpec(
        scoring_script="score.py", mini_batch_size=2, max_concurrency_per_instance=2
    )
    settings = {**spec.settings(), "error_threshold": 0}  # as the server ships them
    (code / "lapis_batch.json").write_text(json.dumps(settings))
    done = subprocess.run(
        [
            *(FOUND[version], "lapis_batch_driver.py", "--config", "lapis_batch.json"),
            *("--data", str(data), "--model", str(tmp_path / "container"), "--output", str(out)),
        ],
        cwd=code,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = (out / "predictions.csv").read_text().splitlines()
    assert rows == [f"f{i}.txt,{i * 4}" for i in range(5)]
    assert (out / "touched").read_text() == "yes"
