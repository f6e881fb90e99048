"""Compute instance files as Azure ML users write them, schedules with Windows time zones."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from jobkit import lapis_cli

from lapis.specs.compute import parse_compute
from lapis.specs.yaml_lines import load

FILES = Path(__file__).parent / "files" / "compute"


def test_windows_time_zone_names_map_to_iana() -> None:
    path = FILES / "instance-schedule.yml"
    spec = parse_compute(load(path.read_text(), str(path)))
    zones = [s["time_zone"] for s in spec.schedules]
    assert zones == ["America/Los_Angeles", "Europe/Berlin"]


def test_the_instance_is_created_with_its_schedules(lapis_server: Any, tmp_path: Path) -> None:
    name = "nb" + uuid.uuid4().hex[:6]
    text = (FILES / "instance-schedule.yml").read_text().replace("nightly-box", name)
    (tmp_path / "ci.yml").write_text(text)
    done = lapis_cli(
        lapis_server, "compute", "create", "-f", str(tmp_path / "ci.yml"), "-o", "json"
    )
    assert done.returncode == 0, done.stderr
    zones = lapis_cli(
        lapis_server, "compute", "show", "-n", name, "--query", "schedules[].time_zone"
    )
    assert json.loads(zones.stdout) == ["America/Los_Angeles", "Europe/Berlin"]
    assert lapis_cli(lapis_server, "compute", "delete", "-n", name, "--yes").returncode == 0
