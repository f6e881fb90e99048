"""``lapis compute …`` against a real server, as a subprocess, on each metadata store.

States advance when the server's scheduler loop calls ``ComputeService.tick``;
the lifecycle test polls for them (10 s at most) rather than assuming timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Protocol

LAPIS = str(Path(sys.executable).parent / "lapis")

YAML = """\
$schema: https://azuremlschemas.azureedge.net/latest/computeInstance.schema.json
name: {name}
type: computeinstance
size: standard_ds1_v2
description: notebooks for the CLI test
idle_time_before_shutdown: "PT30M"
schedules:
  compute_start_stop:
    - action: stop
      trigger:
        type: cron
        expression: "0 18 * * 1-5"
        time_zone: UTC
"""


class Server(Protocol):
    url: str
    token: str
    home: Path
    env: dict[str, str]


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LAPIS_", "MLFLOW_"))}
    env = {**base, "COLUMNS": "200", **server.env}
    return subprocess.run(
        [LAPIS, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def ok_json(server: Server, *args: str) -> Any:
    proc = cli(server, *args, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error:")
    for needle in needles:
        assert needle in lines[0], lines[0]


def wait_for(server: Server, name: str, state: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        c: dict[str, Any] = ok_json(server, "compute", "show", name)
        if c["state"] == state or time.monotonic() > deadline:
            assert c["state"] == state, f"{name} is {c['state']} ({c['state_reason']}), not {state}"
            return c
        time.sleep(0.2)


def test_create_from_yaml_then_list_and_show(lapis_server: Server, tmp_path: Path) -> None:
    spec = tmp_path / "compute.yml"
    spec.write_text(YAML.format(name="nb-show"))
    created = ok_json(lapis_server, "compute", "create", "-f", str(spec))
    assert created["name"] == "nb-show" and created["size"] == "Standard_DS1_v2"
    assert created["state"] in ("Creating", "Running") and len(created["cpu_set"]) == 1

    names = [c["name"] for c in ok_json(lapis_server, "compute", "list")]
    assert names[0] == "local" and "nb-show" in names

    shown = ok_json(lapis_server, "compute", "show", "NB-SHOW")
    assert shown["jobs"] == {"running": [], "queued": []}
    assert shown["idle_time_before_shutdown_seconds"] == 1800
    assert shown["next_schedule"]["action"] == "stop"
    assert shown["created_by"]

    table = cli(lapis_server, "compute", "show", "nb-show")
    assert table.returncode == 0, table.stderr
    for needle in ("Standard_DS1_v2", "Idle shutdown", "Next schedule", "stops at", "Running jobs"):
        assert needle in table.stdout
    # the node its backend reports, and what it cannot run with the reason
    assert shown["nodes"] and shown["nodes"][0]["name"] == "nb-show-0"
    words = " ".join(table.stdout.split())  # a long reason wraps in the table
    assert "Node nb-show-0 Running" in words
    assert "Cannot run multi-node:" in words and "need a compute cluster" in words
    listing = cli(lapis_server, "compute", "list")
    assert listing.returncode == 0 and "nb-show" in listing.stdout and "local" in listing.stdout


def test_stop_and_start_are_observed(lapis_server: Server) -> None:
    made = cli(lapis_server, "compute", "create", "--name", "nb-life", "--size", "Standard_DS1_v2")
    assert made.returncode == 0, made.stderr
    wait_for(lapis_server, "nb-life", "Running")
    stopped = ok_json(lapis_server, "compute", "stop", "nb-life")
    assert stopped["state"] in ("Stopping", "Stopped")
    wait_for(lapis_server, "nb-life", "Stopped")
    assert_one_line_error(cli(lapis_server, "compute", "stop", "nb-life"), "already Stopped")
    started = ok_json(lapis_server, "compute", "start", "nb-life")
    assert started["state"] in ("Starting", "Running")
    c = wait_for(lapis_server, "nb-life", "Running")
    assert "started by" in c["state_reason"]
    assert_one_line_error(cli(lapis_server, "compute", "start", "nb-life"), "already Running")


def test_update_and_delete(lapis_server: Server) -> None:
    assert (
        cli(
            lapis_server, "compute", "create", "-n", "nb-del", "--size", "Standard_DS1_v2"
        ).returncode
        == 0
    )
    c = ok_json(
        lapis_server, "compute", "update", "nb-del", "--idle-time-before-shutdown-minutes", "45"
    )
    assert c["idle_time_before_shutdown_seconds"] == 2700
    refused = cli(lapis_server, "compute", "delete", "nb-del")  # no --yes, no terminal: aborts
    assert refused.returncode != 0
    gone = ok_json(lapis_server, "compute", "delete", "nb-del", "--yes")
    assert gone == {"name": "nb-del", "deleted": True}
    assert_one_line_error(cli(lapis_server, "compute", "show", "nb-del"), "does not exist")


def test_mistakes_end_in_one_line(lapis_server: Server, tmp_path: Path) -> None:
    bad_name = cli(
        lapis_server, "compute", "create", "--name", "bad_name", "--size", "Standard_DS1_v2"
    )
    assert_one_line_error(bad_name, "Invalid compute name 'bad_name'", "letters, digits and '-'")
    spec = tmp_path / "typo.yml"
    spec.write_text(YAML.format(name="nb-typo").replace("size:", "sise:"))
    assert_one_line_error(
        cli(lapis_server, "compute", "create", "-f", str(spec)), "typo.yml:4", "'sise'"
    )
    assert_one_line_error(
        cli(lapis_server, "compute", "create", "-n", "nb-big", "--size", "Standard_DS1_v9"),
        "Did you mean Standard_DS1_v2",
    )
    assert_one_line_error(cli(lapis_server, "compute", "show", "locl"), "Did you mean local")
    assert_one_line_error(cli(lapis_server, "compute", "stop", "local"), "always running")


def test_list_sizes(lapis_server: Server) -> None:
    sizes = {s["name"]: s for s in ok_json(lapis_server, "compute", "list-sizes")}
    ds1 = sizes["Standard_DS1_v2"]
    assert ds1["cores"] == 1 and ds1["fits_host"] and ds1["quota"]["limit"] == 24
    assert sizes["Standard_NC6s_v3"]["approval_required"]
    table = cli(lapis_server, "compute", "list-sizes")
    assert table.returncode == 0 and "Quota left" in table.stdout and "of 24 cores" in table.stdout
