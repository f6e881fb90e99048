"""Jobs as stored and shown: a command job is an MLflow run plus its execution record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class JobEvent:
    status: str
    time: int
    reason: str | None = None


@dataclass
class Job:
    name: str
    run_id: str
    experiment_id: str
    seq: int
    compute: str
    status: str
    spec: dict[str, Any]
    type: str = "command"
    display_name: str | None = None
    status_reason: str | None = None
    environment: str | None = None
    environment_digest: str | None = None
    snapshot_digest: str | None = None
    exit_code: int | None = None
    handle: dict[str, Any] | None = None  # its compute backend's, opaque (compute/base.py)
    job_dir: str | None = None
    created_by: str | None = None
    created_at: int = 0
    start_time: int | None = None
    end_time: int | None = None
    events: list[JobEvent] = field(default_factory=list)
