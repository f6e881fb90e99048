"""The supervisor on its own: real processes, limits enforced by ending the tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lapis.compute import logs
from lapis.compute.supervisor import BUILD_LOG, STD_LOG, emit, read_events


def run_supervisor(tmp_path: Path, command: str, **limits: Any) -> list[dict[str, Any]]:
    job_dir = tmp_path / "job"
    (job_dir / "wd").mkdir(parents=True)
    job = {
        "name": "t",
        "command": command,
        "environment": {
            "kind": "system",
            "label": "system",
            "python": sys.executable,
            "root": str(tmp_path.parent / "envs"),  # the layered env is made once, shared
        },
        "env": {"LAPIS_JOB_NAME": "t"},
        "cpu_set": limits.pop("cpu_set", []),
        "memory_limit_bytes": limits.pop("memory_limit_bytes", None),
        "timeout_seconds": limits.pop("timeout_seconds", None),
    }
    (job_dir / "job.json").write_text(json.dumps(job))
    subprocess.run(
        [sys.executable, "-m", "lapis.compute.supervisor", str(job_dir)], check=True, timeout=60
    )
    events, _ = read_events(job_dir)
    return events


def test_reports_each_step_and_the_exit(tmp_path: Path) -> None:
    events = run_supervisor(tmp_path, "echo $LAPIS_JOB_NAME; exit 4")
    assert [e["status"] for e in events] == ["Starting", "Running", "Exited"]
    assert events[-1]["code"] == 4 and events[-1]["outcome"] == "Failed"
    assert "exit code 4" in events[-1]["reason"] and "t" in events[-1]["reason"]
    assert (tmp_path / "job" / STD_LOG).read_text() == "t\n"


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this OS")
def test_pins_the_command_to_the_compute_cores(tmp_path: Path) -> None:
    core = sorted(os.sched_getaffinity(0))[-1]
    run_supervisor(
        tmp_path,
        'python -c "import os; print(sorted(os.sched_getaffinity(0)))"',
        cpu_set=[core],
    )
    assert (tmp_path / "job" / STD_LOG).read_text().strip() == f"[{core}]"


def test_memory_limit_ends_the_job(tmp_path: Path) -> None:
    script = "import time; x = bytearray(300 * 2**20); time.sleep(30)"
    events = run_supervisor(tmp_path, f'python -c "{script}"', memory_limit_bytes=100 * 2**20)
    assert events[-1]["outcome"] == "Failed"
    assert "memory limit" in events[-1]["reason"]


def test_timeout_ends_the_job(tmp_path: Path) -> None:
    events = run_supervisor(tmp_path, "sleep 30", timeout_seconds=1)
    assert events[-1]["outcome"] == "Failed"
    assert "limits.timeout of 1 s" in events[-1]["reason"]


def test_events_survive_a_torn_last_line(tmp_path: Path) -> None:
    emit(tmp_path, "Starting")
    with open(tmp_path / "events.jsonl", "a") as fh:
        fh.write('{"status": "Runn')
    events, offset = read_events(tmp_path)
    assert [e["status"] for e in events] == ["Starting"]
    with open(tmp_path / "events.jsonl", "a") as fh:
        fh.write('ing", "time": 1}\n')
    more, _ = read_events(tmp_path, offset)
    assert [e["status"] for e in more] == ["Running"]


def test_log_cursor_moves_from_build_log_to_job_log(tmp_path: Path) -> None:
    (tmp_path / BUILD_LOG).parent.mkdir(parents=True)
    (tmp_path / BUILD_LOG).write_text("resolving\ninstalled six\n")
    text, cursor = logs.read(tmp_path, None)
    assert text == "resolving\ninstalled six\n"
    (tmp_path / STD_LOG).parent.mkdir(parents=True)
    (tmp_path / STD_LOG).write_text("epoch 1\npartial")
    text, cursor = logs.read(tmp_path, cursor)
    assert text == "epoch 1\n"  # a line still being written waits
    with open(tmp_path / STD_LOG, "a") as fh:
        fh.write(" line\n")
    text, cursor = logs.read(tmp_path, cursor)
    assert text == "partial line\n"
    assert logs.read(tmp_path, cursor)[0] == ""
    with pytest.raises(Exception, match="Invalid log cursor"):
        logs.read(tmp_path, "x")
