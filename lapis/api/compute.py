"""Wire models of the compute routes (``/api/v1/computes``, ``/api/v1/compute-sizes``).

Routers build these shapes; the SDK reads them; /openapi.json documents them (and
the fuzz test checks every answer against them).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class IdleShutdown(BaseModel):
    seconds: int
    stops_at: int | None
    note: str


class Application(BaseModel):
    """A tool on a compute instance, reached through the server (its user only)."""

    name: str  # JupyterLab, Terminal, SSH
    status: str  # Running, Starting, Stopped, Failed: …, Unavailable: …
    url: str | None = None  # the proxied address (relative to the server)
    command: str | None = None  # what to type (SSH)


class NextSchedule(BaseModel):
    action: str
    time: int
    cron: str
    time_zone: str
    note: str


class NodeOut(BaseModel):
    """One node as the compute's backend sees it now."""

    name: str
    state: str
    detail: str | None
    cpu_percent: float | None = None  # a cluster node's recent CPU use, of its cores


class JobBrief(BaseModel):
    name: str
    status: str
    status_reason: str | None
    created_at: int
    start_time: int | None
    display_name: str | None


class JobsOnCompute(BaseModel):
    running: list[JobBrief]
    queued: list[JobBrief]


class ComputeOut(BaseModel):
    name: str
    type: str
    state: str
    state_reason: str | None
    size: str | None
    family: str | None
    cores: int
    memory_gib: float
    gpus: int
    slots: int
    cpu_set: list[int]
    description: str | None
    tags: dict[str, Any]
    ssh_public_access_enabled: bool
    idle_time_before_shutdown_seconds: int | None
    schedules: list[dict[str, Any]]
    created_by: str | None
    owner: str | None
    created_at: int
    state_changed_at: int
    last_activity_at: int
    idle_shutdown: IdleShutdown | None
    next_schedule: NextSchedule | None
    awake: list[str] = []  # what keeps a Running instance from idling: jobs, busy kernels
    applications: list[Application] = []  # an instance's JupyterLab, terminal, SSH
    # a compute cluster's scale (None for instances), Azure's field names
    min_instances: int | None = None
    max_instances: int | None = None
    idle_time_before_scale_down: int | None = None
    tier: str | None = None
    provider: str | None = None  # where a cluster's nodes run: "local", or "ssh: h1, h2"


class ComputeDetail(ComputeOut):
    """One compute with its jobs, its nodes and what its type cannot run (and why)."""

    jobs: JobsOnCompute
    nodes: list[NodeOut]
    unsupported: dict[str, str]


class ComputeList(BaseModel):
    computes: list[ComputeOut]


class NodePreempted(BaseModel):
    compute: str
    node: str


class ComputeDeleted(BaseModel):
    name: str
    deleted: bool


class SizeQuota(BaseModel):
    limit: int
    used: int
    left: int


class SizeOut(BaseModel):
    name: str
    cores: int
    memory_gib: float
    gpus: int
    gpu_type: str | None
    family: str
    category: str
    approval_required: bool
    fits_host: bool
    quota: SizeQuota


class HostOut(BaseModel):
    cores: int
    memory_gib: float
    gpus: int
    cpu_ids: list[int]


class SizeList(BaseModel):
    sizes: list[SizeOut]
    host: HostOut
