"""Compute targets as the services and faces see them.

``local`` is always present and never stored: it is this host, running jobs
in plain processes. An instance is a named, pinned slice of this host (a VM
size's cores and memory) with a lifecycle; clusters (Ray) come later and
reuse the same fields, with node counts in ``properties``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

JOBS_PER_CORE = 2


class ComputeType(str, enum.Enum):
    LOCAL = "local"
    INSTANCE = "computeinstance"
    CLUSTER = "amlcompute"  # a Ray cluster: min..max nodes of one size


class ComputeState(str, enum.Enum):
    CREATING = "Creating"
    RUNNING = "Running"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    STARTING = "Starting"
    RESTARTING = "Restarting"
    DELETING = "Deleting"
    FAILED = "Failed"


@dataclass
class Compute:
    name: str
    type: str
    state: str
    cores: int
    memory_gib: float
    size: str | None = None
    gpus: int = 0
    family: str | None = None
    state_reason: str | None = None
    description: str | None = None
    ssh_enabled: bool = False
    idle_shutdown_seconds: int | None = None
    schedules: list[dict[str, Any]] = field(default_factory=list)
    cpu_set: tuple[int, ...] = ()
    properties: dict[str, Any] = field(default_factory=dict)
    created_by: str | None = None
    owner: str | None = None  # who may use it: the creator or the user it is assigned to
    created_at: int = 0
    state_changed_at: int = 0
    last_activity_at: int = 0

    @property
    def user(self) -> str | None:
        """The instance's user (Azure: only they submit jobs to it and open its tools)."""
        return self.owner or self.created_by

    @property
    def slots(self) -> int:
        """How many jobs may run at once: two per core on an instance (as Azure's scheduler
        allows), one per node on a cluster."""
        if self.type == ComputeType.CLUSTER.value:
            return max(1, int(self.properties.get("max_instances", 1)))
        return max(1, self.cores * JOBS_PER_CORE)

    @property
    def memory_limit_bytes(self) -> int:
        return int(self.memory_gib * 1024**3)

    @property
    def runs_jobs(self) -> bool:
        """Whether the scheduler may start a queued job here now."""
        return self.state == ComputeState.RUNNING.value
