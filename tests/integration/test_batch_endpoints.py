"""Batch endpoints end to end: real server, CLI, scoring jobs with worker processes.

The scoring scripts run in Lapis' own interpreter (``environment: system``) so
nothing is built. Retries are made deterministic with marker files: the script
fails a mini-batch on its first attempt only (the marker does not exist yet),
in a folder the test names through the deployment's environment variables.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

from jobkit import batch_predictions, get, lapis_cli, log_text, wait

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "batch"

FLAKY_SCORE = """\
import os
from pathlib import Path

factor = None


def init():
    global factor
    factor = int((Path(os.environ["AZUREML_MODEL_DIR"]) / "model" / "factor.txt").read_text())


def run(mini_batch):
    names = [Path(p).name for p in mini_batch]
    if names[0] in os.environ["FLAKY_BATCHES"].split(","):
        marker = Path(os.environ["MARKERS"], names[0])
        if not marker.exists():
            marker.touch()
            raise RuntimeError("flaky first attempt at " + names[0])
    if names[0] in os.environ.get("BROKEN_BATCHES", "").split(","):
        raise ValueError("cannot score " + names[0])
    return [f"{n},{int(Path(p).read_text()) * factor}" for n, p in zip(names, mini_batch)]
"""


def _ok(res: Any) -> Any:
    assert res.returncode == 0, f"exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res


def _json(server: Any, *args: str) -> Any:
    return json.loads(_ok(lapis_cli(server, *args, "-o", "json")).stdout)


def _setup(server: Any, tmp: Path, files: int) -> tuple[str, Path]:
    """A model (factor 3), an endpoint with one flaky deployment, and ``files`` inputs."""
    uid = uuid.uuid4().hex[:6]
    endpoint = f"batch-{uid}"
    model = tmp / "model"
    model.mkdir()
    (model / "factor.txt").write_text("3")
    _ok(lapis_cli(server, "model", "create", "--name", f"factor-{uid}", "--path", str(model)))
    (tmp / "code").mkdir()
    (tmp / "code" / "score.py").write_text(FLAKY_SCORE)
    (tmp / "markers").mkdir()
    (tmp / "endpoint.yml").write_text(f"name: {endpoint}\ndescription: retries\n")
    (tmp / "deployment.yml").write_text(
        textwrap.dedent(
            f"""\
            name: flaky
            endpoint_name: {endpoint}
            model: azureml:factor-{uid}:1
            code_configuration:
              code: code
              scoring_script: score.py
            environment: system
            compute: local
            mini_batch_size: 10
            max_concurrency_per_instance: 2
            retry_settings:
              max_retries: 3
              timeout: 60
            environment_variables:
              MARKERS: {tmp / "markers"}
              FLAKY_BATCHES: f0030.txt,f0070.txt
            """
        )
    )
    data = tmp / "data"
    data.mkdir()
    for i in range(files):
        (data / f"f{i:04d}.txt").write_text(str(i))
    return endpoint, data


def test_200_files_with_two_flaky_mini_batches_retried(lapis_server: Any, tmp_path: Path) -> None:
    endpoint, data = _setup(lapis_server, tmp_path, 200)
    created = _json(lapis_server, "batch-endpoint", "create", "-f", str(tmp_path / "endpoint.yml"))
    assert created["name"] == endpoint and created["defaults"]["deployment_name"] is None
    dep = _json(lapis_server, "batch-deployment", "create", "-f", str(tmp_path / "deployment.yml"))
    assert dep["is_default"] is True  # the first deployment becomes the default
    assert dep["mini_batch_size"] == 10 and dep["max_concurrency_per_instance"] == 2
    assert dep["output_action"] == "append_row" and dep["error_threshold"] == -1

    res = _ok(
        lapis_cli(
            lapis_server,
            "batch-endpoint",
            "invoke",
            endpoint,
            "--input",
            str(data),
            "--stream",
            "-o",
            "json",
        )
    )
    job = json.loads(res.stdout)
    assert job["status"] == "Completed", job["status_reason"]
    assert job["tags"]["lapis.batch.endpoint"] == endpoint
    assert job["tags"]["lapis.batch.deployment"] == "flaky"
    assert job["experiment_name"] == endpoint

    log = log_text(lapis_server, job["name"])
    assert log.count("failed on attempt 1/4") == 2, log
    assert "RuntimeError: flaky first attempt at f0030.txt" in log
    assert "RuntimeError: flaky first attempt at f0070.txt" in log
    assert "mini-batch 4/20 done (10 files, 1 retry)" in log
    assert "mini-batch 8/20 done (10 files, 1 retry)" in log
    assert "20 mini-batches, 2 retries, 0 failed files" in log
    assert sorted(p.name for p in (tmp_path / "markers").iterdir()) == ["f0030.txt", "f0070.txt"]

    rows = batch_predictions(lapis_server, job["name"], tmp_path / "dl")
    assert rows == [f"f{i:04d}.txt,{i * 3}" for i in range(200)]

    listed = _json(lapis_server, "batch-endpoint", "list-jobs", endpoint)
    assert [j["name"] for j in listed] == [job["name"]]


def test_error_threshold_fails_the_job(lapis_server: Any, tmp_path: Path) -> None:
    endpoint, data = _setup(lapis_server, tmp_path, 40)
    _ok(lapis_cli(lapis_server, "batch-endpoint", "create", "-f", str(tmp_path / "endpoint.yml")))
    _ok(
        lapis_cli(
            lapis_server, "batch-deployment", "create", "-f", str(tmp_path / "deployment.yml")
        )
    )
    strict = tmp_path / "strict.yml"
    text = (tmp_path / "deployment.yml").read_text().replace("name: flaky", "name: strict")
    text = text.replace("max_retries: 3", "max_retries: 1")
    strict.write_text(text + "  BROKEN_BATCHES: f0010.txt\nerror_threshold: 5\n")
    _ok(lapis_cli(lapis_server, "batch-deployment", "create", "-f", str(strict)))

    res = lapis_cli(
        lapis_server,
        "batch-endpoint",
        "invoke",
        endpoint,
        "--input",
        str(data),
        "--deployment",
        "strict",
        "--stream",
        "-o",
        "json",
    )
    assert res.returncode == 1, res.stdout + res.stderr
    job = json.loads(res.stdout)
    assert job["status"] == "Failed"
    log = log_text(lapis_server, job["name"])
    assert "mini-batch 2/4 failed all 2 attempts: ValueError: cannot score f0010.txt" in log
    assert "errors 10 > error_threshold 5" in log
    assert "errors 10 > error_threshold 5" in job["status_reason"]  # what `job show` prints
    # the default deployment is still the first one
    shown = _json(lapis_server, "batch-endpoint", "show", endpoint)
    assert shown["defaults"]["deployment_name"] == "flaky"
    assert shown["deployments"] == ["flaky", "strict"]
    moved = _json(
        lapis_server, "batch-endpoint", "update", endpoint, "--default-deployment", "strict"
    )
    assert moved["defaults"]["deployment_name"] == "strict"
    # the default cannot be deleted while another deployment could take its place
    refused = lapis_cli(lapis_server, "batch-deployment", "delete", "-e", endpoint, "-n", "strict",
                        "-y")  # fmt: skip
    assert refused.returncode == 1 and "is the default deployment" in refused.stderr
    assert "--default-deployment flaky" in refused.stderr
    _json(lapis_server, "batch-endpoint", "update", endpoint, "--default-deployment", "flaky")
    _ok(lapis_cli(lapis_server, "batch-deployment", "delete", "-e", endpoint, "-n", "strict", "-y"))
    shown = _json(lapis_server, "batch-endpoint", "show", endpoint)
    assert shown["defaults"]["deployment_name"] == "flaky" and shown["deployments"] == ["flaky"]
    _ok(lapis_cli(lapis_server, "batch-deployment", "delete", "-e", endpoint, "-n", "flaky", "-y"))
    shown = _json(lapis_server, "batch-endpoint", "show", endpoint)  # the last one may go
    assert shown["defaults"]["deployment_name"] is None and shown["deployments"] == []


def test_example_scores_csv_files(lapis_server: Any, tmp_path: Path) -> None:
    uid = uuid.uuid4().hex[:6]
    folder = tmp_path / "batch"
    shutil.copytree(EXAMPLES, folder)
    for name in ("endpoint.yml", "deployment.yml"):
        path = folder / name
        path.write_text(
            path.read_text()
            .replace("house-prices-linear", f"house-linear-{uid}")
            .replace("house-prices", f"houses-{uid}")
        )
    _ok(
        lapis_cli(
            lapis_server,
            "model",
            "create",
            "--name",
            f"house-linear-{uid}",
            "--path",
            str(folder / "model"),
        )
    )
    _ok(lapis_cli(lapis_server, "batch-endpoint", "create", "-f", str(folder / "endpoint.yml")))
    _ok(lapis_cli(lapis_server, "batch-deployment", "create", "-f", str(folder / "deployment.yml")))
    job = _json(
        lapis_server, "batch-endpoint", "invoke", f"houses-{uid}", "--input", str(folder / "data")
    )
    done = wait(lapis_server, job["name"], timeout=60)
    assert done["status"] == "Completed", done["status_reason"]
    rows = batch_predictions(lapis_server, job["name"], tmp_path / "dl")
    # the tables people read name what matters
    shown = _ok(
        lapis_cli(lapis_server, "batch-deployment", "show", "-e", f"houses-{uid}", "-n", "linear")
    ).stdout
    assert "linear (default)" in shown and f"azureml:house-linear-{uid}:1" in shown
    assert "max_retries 3, timeout 30 s" in shown
    listed = _ok(lapis_cli(lapis_server, "batch-deployment", "list", "-e", f"houses-{uid}")).stdout
    assert "linear" in listed
    assert f"houses-{uid}" in _ok(lapis_cli(lapis_server, "batch-endpoint", "list")).stdout
    jobs = _ok(lapis_cli(lapis_server, "batch-endpoint", "list-jobs", f"houses-{uid}")).stdout
    assert job["name"] in jobs and "Completed" in jobs
    assert rows[0] == "part-000.csv,0,230000.0"  # 50000 + 3 * 20000 + 80 * 1500
    assert [r.split(",")[0] for r in rows] == ["part-000.csv"] * 2 + ["part-001.csv"] + [
        "part-002.csv"
    ] * 3 + ["part-003.csv"] + ["part-004.csv"] * 2

    # update -f replaces the deployment's document; the next invocation uses it
    spec = folder / "deployment.yml"
    spec.write_text(spec.read_text().replace("mini_batch_size: 2", "mini_batch_size: 5"))
    updated = _json(lapis_server, "batch-deployment", "update", "-f", str(spec))
    assert updated["mini_batch_size"] == 5 and updated["name"] == "linear"
    # this time the data is a registered asset, named as Azure's samples name theirs
    _ok(lapis_cli(lapis_server, "data", "create", "--name", f"houses-{uid}", "--path",
                  str(folder / "data")))  # fmt: skip
    again = _json(
        lapis_server, "batch-endpoint", "invoke", f"houses-{uid}", "--input",
        f"azureml:houses-{uid}@latest",
    )  # fmt: skip
    assert wait(lapis_server, again["name"], timeout=60)["status"] == "Completed"
    assert get(lapis_server, again["name"])["inputs"]["data"]["asset"] == f"houses-{uid}:1"
    assert "mini-batch 1/1" in log_text(lapis_server, again["name"])  # 5 files, one mini-batch
    bad = spec.read_text().replace("name: linear", "name: other")
    (folder / "other.yml").write_text(bad)
    res = lapis_cli(lapis_server, "batch-deployment", "update", "-f", str(folder / "other.yml"))
    assert res.returncode == 1 and "has no deployment 'other'" in res.stderr, res.stderr


def test_clear_errors(lapis_server: Any, tmp_path: Path) -> None:
    endpoint, data = _setup(lapis_server, tmp_path, 3)
    bad = tmp_path / "bad.yml"
    bad.write_text(f"name: typo\nendpoint_name: {endpoint}\nmodel: m:1\nmini_batch_sise: 5\n")
    res = lapis_cli(lapis_server, "batch-deployment", "create", "-f", str(bad))
    assert res.returncode == 1
    assert f"{bad}:4: 'mini_batch_sise'" in res.stderr
    assert "did you mean 'mini_batch_size'" in res.stderr

    res = lapis_cli(
        lapis_server, "batch-endpoint", "invoke", "no-such-endpoint", "--input", str(data)
    )
    assert res.returncode == 1 and "Batch endpoint 'no-such-endpoint' does not exist" in res.stderr

    _ok(lapis_cli(lapis_server, "batch-endpoint", "create", "-f", str(tmp_path / "endpoint.yml")))
    res = lapis_cli(lapis_server, "batch-endpoint", "invoke", endpoint, "--input", str(data))
    assert res.returncode == 1 and "has no default deployment" in res.stderr

    _ok(
        lapis_cli(
            lapis_server, "batch-deployment", "create", "-f", str(tmp_path / "deployment.yml")
        )
    )
    res = lapis_cli(
        lapis_server,
        "batch-endpoint",
        "invoke",
        endpoint,
        "--input",
        str(data),
        "--deployment",
        "flakey",
    )
    assert res.returncode == 1
    assert "has no deployment 'flakey'" in res.stderr and "Did you mean flaky?" in res.stderr

    wrong_model = tmp_path / "wrong-model.yml"
    wrong_model.write_text(
        (tmp_path / "deployment.yml")
        .read_text()
        .replace("name: flaky", "name: other")
        .replace(":1\n", ":7\n")
    )
    res = lapis_cli(lapis_server, "batch-deployment", "create", "-f", str(wrong_model))
    assert res.returncode == 1 and f"{wrong_model}: model:" in res.stderr, res.stderr

    res = lapis_cli(
        lapis_server, "batch-endpoint", "invoke", endpoint, "--input", str(tmp_path / "nowhere")
    )
    assert res.returncode == 1 and "not a folder or a file" in res.stderr

    _ok(lapis_cli(lapis_server, "batch-endpoint", "delete", endpoint, "--yes"))
    res = lapis_cli(lapis_server, "batch-endpoint", "show", endpoint)
    assert res.returncode == 1 and "does not exist" in res.stderr


HANGING_SCORE = """\
import os, time
from pathlib import Path


def run(mini_batch):
    name = Path(mini_batch[0]).name
    marker = Path(os.environ["MARKERS"], name)
    if not marker.exists():
        marker.touch()
        if name == "f0002.txt":
            time.sleep(120)  # past retry_settings.timeout: the worker is killed
        if name == "f0004.txt":
            os._exit(3)  # the worker dies mid-batch
    return [Path(p).name for p in mini_batch]
"""


def test_driver_replaces_hung_and_dead_workers(tmp_path: Path) -> None:
    """The driver alone (as the job runs it): a timed-out and a crashed mini-batch retried."""
    from lapis.endpoints.runtime import batch_driver

    code, data, markers = tmp_path / "code", tmp_path / "data", tmp_path / "markers"
    for folder in (code, data, markers, tmp_path / "model"):
        folder.mkdir()
    for i in range(6):
        (data / f"f{i:04d}.txt").write_text(str(i))
    (code / "score.py").write_text(HANGING_SCORE)
    shutil.copy(batch_driver.__file__, code / "lapis_batch_driver.py")
    settings = {
        "scoring_script": "score.py",
        "workers": 2,
        "mini_batch_size": 2,
        "output_action": "append_row",
        "output_file_name": "predictions.csv",
        "max_retries": 1,
        "timeout": 2,
        "error_threshold": 0,
        "logging_level": "info",
        "mlflow_model": False,
    }
    (code / "lapis_batch.json").write_text(json.dumps(settings))
    res = subprocess.run(
        [
            sys.executable,
            "lapis_batch_driver.py",
            "--data",
            str(data),
            "--model",
            str(tmp_path / "model"),
            "--output",
            str(tmp_path / "out"),
            "--logs",
            str(tmp_path / "logs"),
        ],
        cwd=code,
        env={"PATH": "/usr/bin:/bin", "MARKERS": str(markers)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "mini-batch 2/3 failed on attempt 1/2: timed out after 2 s" in res.stdout, res.stdout
    assert (
        "mini-batch 3/3 failed on attempt 1/2: the worker process died (exit code 3)" in res.stdout
    ), res.stdout
    out = (tmp_path / "out" / "predictions.csv").read_text().splitlines()
    assert out == [f"f{i:04d}.txt" for i in range(6)]
    summary = json.loads((tmp_path / "logs" / "summary.json").read_text())
    assert (summary["retries"], summary["failed_files"]) == (2, 0)
