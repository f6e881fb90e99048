"""Jobs outlive the server: kill -9 it while jobs run, restart it, nothing is lost."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from jobkit import create_instance, get, log_text, submit, wait, write_job

pytestmark = pytest.mark.stores("sqlite", "postgres")

SLOW = """\
import os, sys, time
print("started", flush=True)
time.sleep(float(sys.argv[1]))
open(os.path.join(sys.argv[2], "result.txt"), "w").write("finished while the server was down")
print("done", flush=True)
"""


def test_jobs_finish_and_queue_resumes_across_a_server_kill(
    fresh_server: Any, tmp_path: Path
) -> None:
    compute = create_instance(fresh_server)  # 1 core: 2 slots
    slow = write_job(
        tmp_path / "slow",
        f"""\
        code: src
        command: python slow.py 3 ${{{{outputs.result}}}}
        compute: {compute}
        outputs:
          result:
            type: uri_folder
        """,
        {"src/slow.py": SLOW},
    )
    quick = write_job(
        tmp_path / "quick",
        f"""\
        command: echo queued job ran
        compute: {compute}
        """,
    )
    running = [submit(fresh_server, slow)["name"] for _ in range(2)]
    queued = submit(fresh_server, quick)["name"]
    for name in running:
        wait(fresh_server, name, {"Running"}, timeout=30)
    assert get(fresh_server, queued)["status"] == "Queued"

    fresh_server.port = int(fresh_server.url.rsplit(":", 1)[1])  # come back on the same port
    fresh_server.kill9()
    time.sleep(4.5)  # the slow jobs finish while nobody is watching
    fresh_server.start()

    for name in running:
        done = wait(fresh_server, name, timeout=30)
        assert done["status"] == "Completed", done["status_reason"]
        assert "done" in log_text(fresh_server, name)
        with fresh_server.client() as c:
            files = c.get(f"/api/v1/jobs/{name}/files").json()["files"]
            result = c.get(f"/api/v1/jobs/{name}/outputs/result/files").json()["files"]
        assert "user_logs/std_log.txt" in {f["path"] for f in files}
        assert [f["path"] for f in result] == ["result.txt"]  # on the default datastore
    after = wait(fresh_server, queued, timeout=30)
    assert after["status"] == "Completed"
    assert "queued job ran" in log_text(fresh_server, queued)


def test_a_hung_supervisor_is_reported_not_responding(lapis_server: Any, tmp_path: Path) -> None:
    import os
    import signal

    job_file = write_job(tmp_path, "command: sleep 25\n")
    name = submit(lapis_server, job_file)["name"]
    wait(lapis_server, name, {"Running"}, timeout=30)
    supervisor = _supervisor_pid(lapis_server, name)
    os.kill(supervisor, signal.SIGSTOP)
    try:
        stuck = wait(lapis_server, name, {"NotResponding"}, timeout=30)
        assert "no heartbeat" in stuck["status_reason"]
    finally:
        os.kill(supervisor, signal.SIGCONT)
    back = wait(lapis_server, name, {"Running"}, timeout=30)
    assert back["status_reason"] == "heartbeat is back"
    with lapis_server.client() as c:
        c.post(f"/api/v1/jobs/{name}/cancel")
    assert wait(lapis_server, name, timeout=30)["status"] == "Canceled"


def _supervisor_pid(server: Any, name: str) -> int:
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if "lapis.compute.supervisor" in cmd and str(server.home / "jobs" / name) in cmd:
            return int(proc.pid)
    raise AssertionError("no supervisor process found")


OUTAGE = """\
import os, pathlib, sys, time
import lapis

marks = pathlib.Path(sys.argv[1])
with lapis.start_run() as run:
    for step in range(40):
        lapis.log_metric("loss", 1.0 / (step + 1), step=step)
    lapis.flush()
    (marks / "phase1").touch()
    while not (marks / "down").exists():
        time.sleep(0.05)
    for step in range(40, 80):  # the server is down: these wait on disk
        lapis.log_metric("loss", 1.0 / (step + 1), step=step)
print("logged 80 points", flush=True)
(marks / "done").touch()
"""


def test_a_server_outage_longer_than_the_job_loses_no_point(
    fresh_server: Any, tmp_path: Path
) -> None:
    """The job ends while the server is down; its spooled points reach the run afterwards."""
    marks = tmp_path / "marks"
    marks.mkdir()
    job_file = write_job(
        tmp_path / "outage",
        f"""\
        code: src
        command: python outage.py {marks}
        environment: system
        environment_variables:
          LAPIS_RETRY_TIMEOUT: "1"
          LAPIS_EXIT_GRACE: "1"
        """,
        {"src/outage.py": OUTAGE},
    )
    name = submit(fresh_server, job_file)["name"]
    deadline = time.monotonic() + 120
    while not (marks / "phase1").exists():
        assert time.monotonic() < deadline, log_text(fresh_server, name)
        time.sleep(0.05)
    fresh_server.kill9()
    (marks / "down").touch()
    while not (marks / "done").exists():
        assert time.monotonic() < deadline, "the job did not finish while the server was down"
        time.sleep(0.05)
    time.sleep(1.0)
    fresh_server.start()
    job = wait(fresh_server, name, timeout=60)
    assert job["status"] == "Completed", job["status_reason"]
    with fresh_server.client() as c:
        history = c.get(f"/api/v1/runs/{job['run_id']}/metrics/loss/history").json()
    steps = sorted(p["step"] for p in history["points"])
    assert steps == list(range(80)), steps
    assert not list((fresh_server.home / "jobs" / name / "spool").glob("*.json"))
