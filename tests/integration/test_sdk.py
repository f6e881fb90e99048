"""The native SDK against a real ``lapis server`` process."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

import lapis
from lapis.errors import InvalidParameterValue, Unauthenticated
from lapis.sdk.connection import LapisHTTP

pytestmark = pytest.mark.stores("sqlite", "postgres")

REPO = Path(__file__).parents[2]


class Server(Protocol):
    """What the shared ``lapis_server`` fixture (tests/conftest.py) gives: a running server."""

    url: str
    token: str
    home: Path
    env: dict[str, str]


# --- helpers --------------------------------------------------------------------------
@pytest.fixture
def sdk_env(lapis_server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """Point the in-process SDK at the server; end whatever a test leaves open."""
    for name in ("LAPIS_RUN_ID", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    for k, v in lapis_server.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("LAPIS_RETRY_TIMEOUT", "10")
    yield lapis_server
    while lapis.active_run() is not None:
        lapis.end_run()


@pytest.fixture
def api(lapis_server: Server) -> Iterator[LapisHTTP]:
    with LapisHTTP(lapis_server.url, lapis_server.token) as http:
        yield http


def history(api: LapisHTTP, run_id: str, key: str) -> list[dict[str, float]]:
    points: list[dict[str, float]] = api.get(f"/api/v1/runs/{run_id}/metrics/{key}/history")[
        "points"
    ]
    return points


# --- tests ------------------------------------------------------------------------------
def test_run_round_trip(sdk_env: Server, api: LapisHTTP) -> None:
    with lapis.start_run(
        experiment_name="sdk-round-trip", run_name="first", tags={"t": "1"}
    ) as run:
        lapis.log_params({"lr": 0.01, "layers": 4})
        lapis.set_tag("team", "vision")
        for step in range(100):
            lapis.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 100}, step=step)
        lapis.log_metric("nan_metric", float("nan"))
    got = api.get(f"/api/v1/runs/{run.run_id}")
    assert got["status"] == "FINISHED" and got["end_time"]
    assert got["run_name"] == "first"
    assert got["params"] == {"lr": "0.01", "layers": "4"}
    assert got["tags"]["t"] == "1" and got["tags"]["team"] == "vision"
    assert got["tags"]["mlflow.user"] == "admin"
    assert got["metrics"]["loss"]["step"] == 99
    assert got["metrics"]["acc"]["value"] == pytest.approx(0.99)
    assert got["metrics"]["nan_metric"]["value"] == "NaN"
    points = history(api, run.run_id, "loss")
    assert [p["step"] for p in points] == list(range(100))
    exp = api.get("/api/v1/experiments/sdk-round-trip")
    assert got["experiment_id"] == exp["experiment_id"]


def test_exception_in_with_block_fails_the_run(sdk_env: Server, api: LapisHTTP) -> None:
    with pytest.raises(ZeroDivisionError), lapis.start_run() as run:
        lapis.log_metric("x", 1.0)
        _ = 1 / 0
    got = api.get(f"/api/v1/runs/{run.run_id}")
    assert got["status"] == "FAILED"
    assert got["metrics"]["x"]["value"] == 1.0


def test_ingest_rate(sdk_env: Server, api: LapisHTTP) -> None:
    """log_metric calls plus the final flush, end to end (200,000 points/s is the target).

    The rate is printed, not asserted: under a parallel test run it says more
    about the machine than the code. `make bench` measures it properly.
    """
    n = 200_000
    t0 = time.perf_counter()
    run = lapis.start_run(experiment_name="sdk-ingest")
    log_metric = lapis.log_metric
    for i in range(n):
        log_metric("x", i * 0.5, step=i)
    t_loop = time.perf_counter()
    lapis.end_run()
    total = time.perf_counter() - t0
    rate = n / total
    print(f"\nSDK ingest: {rate:,.0f} points/s end to end ({n / (t_loop - t0):,.0f}/s in the loop)")
    assert api.get(f"/api/v1/runs/{run.run_id}")["metrics"]["x"]["step"] == n - 1
    assert len(history(api, run.run_id, "x")) == n


def run_script(server: Server, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **server.env, **env}
    for name in ("LAPIS_RUN_ID", "MLFLOW_RUN_ID"):
        if name not in env:
            full.pop(name, None)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_script_exiting_without_end_run_loses_nothing(lapis_server: Server, api: LapisHTTP) -> None:
    proc = run_script(
        lapis_server,
        """
        import lapis
        run = lapis.start_run(experiment_name="sdk-exit")
        print(run.run_id, flush=True)
        for i in range(120_000):
            lapis.log_metric("x", float(i), step=i)
            if i % 1000 == 0:
                lapis.log_metric("y", float(i), step=i)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip()
    got = api.get(f"/api/v1/runs/{run_id}")
    assert got["status"] == "FINISHED"
    assert [p["step"] for p in history(api, run_id, "x")] == list(range(120_000))
    assert len(history(api, run_id, "y")) == 120


def test_job_process_attaches_to_its_run(lapis_server: Server, api: LapisHTTP) -> None:
    run = api.post("/api/v1/runs", {"experiment_name": "sdk-job"})
    proc = run_script(
        lapis_server,
        """
        import lapis
        with lapis.start_run() as run:
            lapis.log_metric("from_job", 7.0)
        print(run.run_id)
        """,
        LAPIS_RUN_ID=run["run_id"],
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == run["run_id"]
    got = api.get(f"/api/v1/runs/{run['run_id']}")
    assert got["metrics"]["from_job"]["value"] == 7.0
    assert got["status"] == "RUNNING"  # the job's supervisor, not the script, ends it


def test_server_side_rejection_is_raised(sdk_env: Server, api: LapisHTTP) -> None:
    """A batch the server refuses (a param re-logged with another value) surfaces as an error."""
    existing = api.post("/api/v1/runs", {"experiment_name": "sdk-reject"})
    api.post(f"/api/v1/runs/{existing['run_id']}/log", {"params": {"lr": "0.1"}})
    lapis.start_run(run_id=existing["run_id"])
    lapis.log_param("lr", 0.2)  # this process has not seen lr: only the server can refuse
    with pytest.raises(InvalidParameterValue, match="lr"):
        lapis.flush()
    lapis.log_metric("ok", 1.0)  # the error was reported once; logging goes on
    lapis.end_run()
    got = api.get(f"/api/v1/runs/{existing['run_id']}")
    assert got["params"]["lr"] == "0.1" and got["metrics"]["ok"]["value"] == 1.0


def test_artifact_upload_is_byte_identical(sdk_env: Server, api: LapisHTTP, tmp_path: Path) -> None:
    blob = tmp_path / "weights.bin"
    blob.write_bytes(os.urandom(6 * 1024 * 1024))
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "notes.txt").write_text("hello")
    with lapis.start_run(experiment_name="sdk-artifacts") as run:
        lapis.log_artifact(blob, artifact_path="model")
        lapis.log_artifacts(tmp_path / "tree")
    root = run.info.artifact_uri.split(":", 1)[1].strip("/")
    proxy = "/api/2.0/mlflow-artifacts/artifacts"
    resp = api.request("GET", f"{proxy}/{root}/model/weights.bin")
    assert hashlib.sha256(resp.content).digest() == hashlib.sha256(blob.read_bytes()).digest()
    assert api.request("GET", f"{proxy}/{root}/sub/notes.txt").text == "hello"
    listing = api.get(proxy, path=f"{root}/model")["files"]
    assert [(f["path"], f["file_size"]) for f in listing] == [("weights.bin", blob.stat().st_size)]


def test_wrong_token_is_unauthenticated(
    lapis_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAPIS_URL", lapis_server.url)
    monkeypatch.setenv("LAPIS_TOKEN", "lapis_wrong")
    with pytest.raises(Unauthenticated):
        lapis.start_run()
    assert lapis.active_run() is None


def test_mlflow_client_reads_what_the_sdk_wrote(sdk_env: Server) -> None:
    mlflow = pytest.importorskip("mlflow")
    with lapis.start_run(experiment_name="sdk-mlflow") as run:
        for i in range(50):
            lapis.log_metric("m", float(i), step=i)
        lapis.log_param("p", "v")
    client = mlflow.tracking.MlflowClient(tracking_uri=sdk_env.url)
    got = client.get_run(run.run_id)
    assert got.data.params == {"p": "v"} and got.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.run_id, "m")] == list(range(50))
