"""Wire models of the online and batch endpoint routes.

Deployments answer with their stored document (Azure's field names, spread in)
plus what Lapis adds, so those models allow extra fields and pin down the added
ones; everything else is closed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class DeploymentBrief(BaseModel):
    name: str
    provisioning_state: str
    model: Any
    instance_count: int


class EndpointOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # ``deployments`` on show
    name: str
    auth_mode: str
    description: str | None
    tags: dict[str, Any]
    traffic: dict[str, int]
    mirror_traffic: dict[str, int]
    scoring_uri: str
    provisioning_state: str
    created_by: str | None
    created_at: int
    updated_at: int


class EndpointDetail(EndpointOut):
    deployments: list[DeploymentBrief]


class EndpointList(BaseModel):
    endpoints: list[EndpointOut]


class EndpointKeys(BaseModel):
    primaryKey: str
    secondaryKey: str


class EndpointToken(BaseModel):
    """A short-lived scoring token of an ``aml_token`` endpoint (times in epoch seconds)."""

    accessToken: str
    tokenType: str
    expiryTimeUtc: int
    refreshAfterTimeUtc: int


class KeyRegenerated(BaseModel):
    name: str
    keyType: str
    regenerated: bool


class Deleted(BaseModel):
    name: str
    deleted: bool


class DeploymentDeleted(Deleted):
    endpoint: str


class InstanceOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    index: int
    generation: int
    state: str
    ready: bool
    restarts: int


class DeploymentOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # the deployment document itself
    name: str
    endpoint_name: str
    type: str
    model_type: str
    environment_label: str
    provisioning_state: str
    state_reason: str | None
    generation: int
    traffic: int
    instances: list[InstanceOut]
    created_by: str | None
    created_at: int
    updated_at: int


class DeploymentList(BaseModel):
    deployments: list[DeploymentOut]


class DeploymentLogs(BaseModel):
    endpoint: str
    name: str
    instance: int | None
    log: str


class BatchEndpointOut(BaseModel):
    name: str
    description: str | None
    tags: dict[str, Any]
    defaults: dict[str, str | None]
    deployments: list[str]
    scoring_uri: str
    provisioning_state: str
    created_by: str | None
    created_at: int
    updated_at: int


class BatchEndpointList(BaseModel):
    endpoints: list[BatchEndpointOut]


class BatchDeploymentOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # the batch deployment document itself
    name: str
    endpoint_name: str
    model: str
    model_type: str
    code: Any
    environment_label: str
    is_default: bool
    provisioning_state: str
    created_by: str | None
    created_at: int
    updated_at: int


class BatchDeploymentList(BaseModel):
    deployments: list[BatchDeploymentOut]


class Telemetry(BaseModel):
    """Counts and latencies of one endpoint or deployment (``timeseries``: one point per step)."""

    model_config = ConfigDict(extra="allow")  # instances, limits: per deployment
    requests: int
    errors: int
    latency_ms: dict[str, Any]
    recent: dict[str, Any] | None = None
    timeseries: Any = None  # per deployment; the endpoint's own is beside ``totals``


class EndpointMetrics(BaseModel):
    model_config = ConfigDict(extra="allow")  # traffic and mirror_traffic while routed
    endpoint: str
    window_seconds: int
    totals: Telemetry
    timeseries: Any
    deployments: dict[str, Telemetry]
