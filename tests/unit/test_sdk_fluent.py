"""The fluent API (``lapis.start_run`` & co.) against a small fake server.

The fake speaks just enough of ``/api/v1`` and the artifact proxy to check
what the SDK sends: run creation, columnar batches, ends, artifact uploads.
Subprocess tests check the interpreter-exit path: a script that never calls
``end_run`` still delivers every point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import lapis
from lapis.errors import InvalidParameterValue, LapisError, ResourceDoesNotExist
from lapis.sdk import fluent

REPO = Path(__file__).parents[2]


class FakeServer:
    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.points: dict[str, list[tuple[Any, ...]]] = {}
        self.params: dict[str, dict[str, str]] = {}
        self.artifacts: dict[str, bytes] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                if parts[:3] == ["api", "v1", "runs"] and len(parts) == 4:
                    run = fake.runs.get(parts[3])
                    if run is None:
                        self._send(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no"})
                    else:
                        self._send(200, run)
                    return
                self._send(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": self.path})

            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")
                body = json.loads(self._body() or b"{}")
                with fake.lock:
                    if parts == ["api", "v1", "runs"]:
                        self._send(200, fake.create(body))
                    elif parts[-1] == "log":
                        m = body.get("metrics", {})
                        cols = (m.get("key", []), m.get("value"), m.get("step"), m.get("timestamp"))
                        fake.points.setdefault(parts[3], []).extend(
                            zip(*cols, strict=True) if cols[0] else []
                        )
                        fake.params.setdefault(parts[3], {}).update(body.get("params", {}))
                        fake.runs[parts[3]]["tags"].update(body.get("tags", {}))
                        self._send(200, {"metrics": len(cols[0])})
                    elif parts[-1] == "end":
                        fake.runs[parts[3]]["status"] = body["status"]
                        self._send(200, fake.runs[parts[3]])
                    else:
                        self._send(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": "?"})

            def do_PUT(self) -> None:
                prefix = "/api/2.0/mlflow-artifacts/artifacts/"
                assert self.path.startswith(prefix)
                fake.artifacts[self.path[len(prefix) :]] = self._body()
                self._send(200, {})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        run_id = uuid.uuid4().hex
        run = {
            "run_id": run_id,
            "run_name": body.get("run_name") or "fake-run",
            "experiment_id": body.get("experiment_id", "1"),
            "experiment_name": body.get("experiment_name"),
            "status": "RUNNING",
            "artifact_uri": f"mlflow-artifacts:/1/{run_id}/artifacts",
            "tags": dict(body.get("tags", {})),
        }
        self.runs[run_id] = run
        return run

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    server = FakeServer()
    for name in ("LAPIS_RUN_ID", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LAPIS_URL", server.url)
    monkeypatch.setenv("LAPIS_TOKEN", "tok")
    monkeypatch.setenv("LAPIS_RETRY_TIMEOUT", "2")
    yield server
    while lapis.active_run() is not None:
        lapis.end_run()
    server.close()


def test_context_manager_ends_finished_or_failed(fake: FakeServer) -> None:
    with lapis.start_run(experiment_name="exp", run_name="r1", tags={"a": 1}) as run:
        assert lapis.active_run() is run
        lapis.log_metric("loss", 0.5, step=1)
        lapis.log_metrics({"acc": 0.9, "f1": 0.8}, step=2)
        assert lapis.log_param("lr", 0.1) == 0.1
        lapis.log_params({"layers": 3})
        lapis.set_tag("team", "cv")
        lapis.set_tags({"stage": "dev"})
    assert lapis.active_run() is None
    stored = fake.runs[run.run_id]
    assert stored["status"] == "FINISHED" and stored["experiment_name"] == "exp"
    assert stored["tags"]["a"] == "1" and stored["tags"]["team"] == "cv"
    assert stored["tags"]["mlflow.source.type"] == "LOCAL"
    assert {p[0] for p in fake.points[run.run_id]} == {"loss", "acc", "f1"}
    assert fake.params[run.run_id] == {"lr": "0.1", "layers": "3"}

    with pytest.raises(RuntimeError), lapis.start_run() as failing:
        raise RuntimeError("boom")
    assert fake.runs[failing.run_id]["status"] == "FAILED"


def test_logging_without_a_run_starts_one(fake: FakeServer) -> None:
    lapis.log_metric("x", 1)
    run = lapis.active_run()
    assert run is not None
    lapis.flush()
    assert fake.points[run.run_id][0][:3] == ("x", 1.0, 0)
    lapis.end_run("KILLED")
    assert fake.runs[run.run_id]["status"] == "KILLED"
    with pytest.raises(InvalidParameterValue):
        lapis.end_run("DONE")


def test_nested_runs_need_nested_true(fake: FakeServer) -> None:
    parent = lapis.start_run()
    with pytest.raises(LapisError, match="already active"):
        lapis.start_run()
    with lapis.start_run(nested=True) as child:
        lapis.log_metric("inner", 1.0)
    assert fake.runs[child.run_id]["tags"]["mlflow.parentRunId"] == parent.run_id
    assert lapis.active_run() is parent
    lapis.end_run()


def test_attaching_to_a_job_run_does_not_end_it(
    fake: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_run = fake.create({})
    monkeypatch.setenv("MLFLOW_RUN_ID", job_run["run_id"])
    with lapis.start_run() as run:
        lapis.log_metric("x", 2.0)
    assert run.run_id == job_run["run_id"]
    assert fake.runs[run.run_id]["status"] == "RUNNING"  # the job's supervisor ends it
    assert len(fake.points[run.run_id]) == 1
    monkeypatch.setenv("MLFLOW_RUN_ID", "f" * 32)
    with pytest.raises(ResourceDoesNotExist):
        lapis.start_run()


def test_log_artifact_puts_the_file_under_the_run(fake: FakeServer, tmp_path: Path) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(os.urandom(300_000))
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "a.txt").write_text("a")
    (tmp_path / "dir" / "sub" / "b.txt").write_text("b")
    with lapis.start_run() as run:
        lapis.log_artifact(src)
        lapis.log_artifact(str(src), artifact_path="models/v1")
        lapis.log_artifacts(tmp_path / "dir", artifact_path="data")
        with pytest.raises(InvalidParameterValue):
            lapis.log_artifact(src, artifact_path="../escape")
    root = f"1/{run.run_id}/artifacts"
    assert fake.artifacts[f"{root}/model.bin"] == src.read_bytes()
    assert fake.artifacts[f"{root}/models/v1/model.bin"] == src.read_bytes()
    assert fake.artifacts[f"{root}/data/a.txt"] == b"a"
    assert fake.artifacts[f"{root}/data/sub/b.txt"] == b"b"


def run_script(fake: FakeServer, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "LAPIS_URL": fake.url,
        "LAPIS_TOKEN": "tok",
        "LAPIS_RETRY_TIMEOUT": "5",
        **env,
    }
    for name in ("LAPIS_RUN_ID", "MLFLOW_RUN_ID"):
        if name not in env:
            full_env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_exit_without_end_run_delivers_every_point(fake: FakeServer) -> None:
    proc = run_script(
        fake,
        """
        import lapis
        run = lapis.start_run(experiment_name="exit")
        lapis.log_param("p", 1)
        for i in range(150_000):
            lapis.log_metric("x", i * 0.5, step=i)
        print(run.run_id)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip()
    steps = sorted(p[2] for p in fake.points[run_id])
    assert steps == list(range(150_000))
    assert fake.runs[run_id]["status"] == "FINISHED"
    assert fake.params[run_id] == {"p": "1"}


def test_uncaught_exception_at_exit_marks_the_run_failed(fake: FakeServer) -> None:
    proc = run_script(
        fake,
        """
        import lapis
        run = lapis.start_run()
        print(run.run_id, flush=True)
        for i in range(1000):
            lapis.log_metric("x", i, step=i)
        raise SystemError("training crashed")
        """,
    )
    assert proc.returncode == 1 and "training crashed" in proc.stderr
    run_id = proc.stdout.split()[0]
    assert len(fake.points[run_id]) == 1000
    assert fake.runs[run_id]["status"] == "FAILED"


def test_job_process_flushes_but_leaves_the_run_open(fake: FakeServer) -> None:
    job_run = fake.create({})
    proc = run_script(
        fake,
        """
        import lapis
        for i in range(10):
            lapis.log_metric("x", i, step=i)
        """,
        LAPIS_RUN_ID=job_run["run_id"],
    )
    assert proc.returncode == 0, proc.stderr
    assert len(fake.points[job_run["run_id"]]) == 10
    assert fake.runs[job_run["run_id"]]["status"] == "RUNNING"


def test_lapis_exposes_the_fluent_api() -> None:
    for name in ("start_run", "end_run", "log_metric", "log_artifact", "active_run", "flush"):
        assert getattr(lapis, name) is getattr(fluent, name)
    assert "log_metrics" in dir(lapis)
    with pytest.raises(AttributeError):
        lapis.no_such_thing  # noqa: B018
