"""Request and response models of the native tracking API.

The metric batch is columnar — four parallel lists — because that is what a
client can serialise and the server can insert without building an object per
point; it is the path behind the native SDK's ingest rate.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

INT64_MAX = 2**63 - 1  # what a BIGINT column holds: epoch milliseconds fit with room to spare


class MetricColumns(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: list[str] = Field(default_factory=list)
    value: list[float] = Field(default_factory=list)
    step: list[int] = Field(default_factory=list)
    timestamp: list[int] = Field(default_factory=list)


class LogRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metrics: MetricColumns = Field(default_factory=MetricColumns)
    params: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, Any] = Field(default_factory=dict)


class CreateRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    experiment_id: str | None = None
    experiment_name: str | None = None
    run_name: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    start_time: int | None = Field(default=None, ge=0, le=INT64_MAX)


class EndRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str = "FINISHED"
    end_time: int | None = Field(default=None, ge=0, le=INT64_MAX)


def inline_refs(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema with its ``$defs`` written in place, for ``openapi_extra``
    (where a ``#/$defs/...`` reference would point nowhere in the OpenAPI document)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.rsplit("/", 1)[-1]])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


# --- answers -------------------------------------------------------------------------------
class WhoAmI(BaseModel):
    user_id: str
    name: str
    role: str | None
    roles: list[str]
    job: str | None  # set when the token is a job's
    actions: list[str]


class ExperimentOut(BaseModel):
    experiment_id: str
    name: str
    artifact_location: str | None
    lifecycle_stage: str
    creation_time: int | None
    last_update_time: int | None
    tags: dict[str, str]


class ExperimentList(BaseModel):
    experiments: list[ExperimentOut]


class LatestMetric(BaseModel):
    value: float | str  # NaN and infinities travel as strings, as MLflow writes them
    step: int
    timestamp: int


class RunOut(BaseModel):
    run_id: str
    run_name: str | None
    experiment_id: str
    status: str
    start_time: int | None
    end_time: int | None
    user_id: str | None
    created_by: str | None
    artifact_uri: str | None
    lifecycle_stage: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, LatestMetric]


class RunList(BaseModel):
    runs: list[RunOut]
    next_page_token: str | None


class MetricHistory(BaseModel):
    key: str
    points: list[LatestMetric]


class Logged(BaseModel):
    metrics: int  # points written (a resent batch counts again; the store ignores repeats)
