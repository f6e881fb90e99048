"""Idle shutdown in a live server: an instance with nothing to do stops itself, visibly."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from jobkit import lapis_cli, submit, wait, write_job


def test_idle_instance_stops_itself_and_says_why(lapis_server: Any, tmp_path: Path) -> None:
    name = f"idle-q{uuid.uuid4().hex[:6]}"
    spec = tmp_path / "compute.yml"
    spec.write_text(
        f"name: {name}\ntype: computeinstance\nsize: Standard_DS1_v2\n"
        "idle_time_before_shutdown: PT3S\n"
    )
    assert lapis_cli(lapis_server, "compute", "create", "-f", str(spec)).returncode == 0
    job_file = write_job(tmp_path / "job", f"command: sleep 5\ncompute: {name}\n")
    job = submit(lapis_server, job_file)
    shown = json.loads(lapis_cli(lapis_server, "compute", "show", name, "-o", "json").stdout)
    assert shown["state"] in {"Creating", "Running"}
    done = wait(lapis_server, job["name"], timeout=30)
    assert done["status"] == "Completed"
    # busy for 5 s (longer than the idle limit): it stops only ~3 s after the job ended
    deadline = time.monotonic() + 20
    while True:
        shown = json.loads(lapis_cli(lapis_server, "compute", "show", name, "-o", "json").stdout)
        if shown["state"] == "Stopped":
            break
        assert time.monotonic() < deadline, shown
        time.sleep(0.3)
    assert "idle" in (shown["state_reason"] or "")
    assert shown["state_changed_at"] >= done["end_time"] + 2500
    table = lapis_cli(lapis_server, "compute", "show", name)
    assert "idle" in table.stdout.lower()
