"""Entities to and from MLflow's JSON shapes (the proto3 JSON its client parses).

Non-finite floats travel as the strings ``"NaN"``, ``"Infinity"`` and
``"-Infinity"``, the protobuf JSON convention; absent optional fields are left
out rather than sent as null, because the client's parser rejects nulls.
"""

from __future__ import annotations

import math
from typing import Any

from lapis.entities.tracking import DatasetInput, Experiment, LoggedModel, Metric, Run, RunInfo
from lapis.errors import InvalidParameterValue


def float_out(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


_SPECIAL = {
    "nan": math.nan,
    "infinity": math.inf,
    "inf": math.inf,
    "-infinity": -math.inf,
    "-inf": -math.inf,
}


def float_in(value: object, field: str) -> float:
    if isinstance(value, bool):
        raise InvalidParameterValue(f"Invalid value {value!r} for parameter '{field}' supplied")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        special = _SPECIAL.get(value.strip().lower())
        if special is not None:
            return special
        try:
            return float(value)
        except ValueError:
            pass
    raise InvalidParameterValue(
        f"Invalid value {value!r} for parameter '{field}' supplied: expected a number"
    )


def kv(d: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in d.items()]


def experiment_json(e: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": e.experiment_id,
        "name": e.name,
        "artifact_location": e.artifact_location,
        "lifecycle_stage": e.lifecycle_stage,
        "last_update_time": e.last_update_time,
        "creation_time": e.creation_time,
        "tags": kv(e.tags),
    }


def run_info_json(i: RunInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "run_id": i.run_id,
        "run_uuid": i.run_id,
        "run_name": i.run_name or "",
        "experiment_id": i.experiment_id,
        "status": i.status,
        "artifact_uri": i.artifact_uri,
        "lifecycle_stage": i.lifecycle_stage,
    }
    if i.user_id is not None:
        out["user_id"] = i.user_id
    if i.start_time is not None:
        out["start_time"] = i.start_time
    if i.end_time is not None:
        out["end_time"] = i.end_time
    return out


def metric_json(m: Metric, with_run: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": m.key,
        "value": float_out(m.value),
        "timestamp": m.timestamp,
        "step": m.step,
    }
    if with_run and m.run_id is not None:
        out["run_id"] = m.run_id
    for key in ("model_id", "dataset_name", "dataset_digest"):  # a logged model's metric
        value = getattr(m, key)
        if value is not None:
            out[key] = value
    return out


def metrics_json(points: list[Metric], with_run: bool = False) -> list[dict[str, Any]]:
    """Many points at once (histories run to 10^5 points per page), without per-point calls."""
    if with_run:
        return [metric_json(m, with_run=True) for m in points]
    isfinite = math.isfinite
    return [
        {
            "key": m.key,
            "value": m.value if isfinite(m.value) else float_out(m.value),
            "timestamp": m.timestamp,
            "step": m.step,
        }
        for m in points
    ]


def dataset_input_json(d: DatasetInput) -> dict[str, Any]:
    ds: dict[str, Any] = {
        "name": d.name,
        "digest": d.digest,
        "source_type": d.source_type,
        "source": d.source,
    }
    if d.schema is not None:
        ds["schema"] = d.schema
    if d.profile is not None:
        ds["profile"] = d.profile
    return {"tags": d.tags, "dataset": ds}


def run_json(r: Run) -> dict[str, Any]:
    return {
        "info": run_info_json(r.info),
        "data": {
            "metrics": [metric_json(m) for m in r.metrics],
            "params": kv(r.params),
            "tags": kv(r.tags),
        },
        "inputs": {
            "dataset_inputs": [dataset_input_json(d) for d in r.datasets],
            "model_inputs": [{"model_id": m} for m in r.model_inputs],
        },
        "outputs": {"model_outputs": [{"model_id": m, "step": s} for m, s in r.model_outputs]},
    }


LOGGED_MODEL_STATUS = {
    "PENDING": "LOGGED_MODEL_PENDING",
    "READY": "LOGGED_MODEL_READY",
    "FAILED": "LOGGED_MODEL_UPLOAD_FAILED",
}


def logged_model_json(m: LoggedModel) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": m.model_id,
        "experiment_id": m.experiment_id,
        "name": m.name,
        "artifact_uri": m.artifact_location,
        "creation_timestamp_ms": m.creation_timestamp,
        "last_updated_timestamp_ms": m.last_updated_timestamp,
        # the enum names of MLflow's protocol: a bare READY parses as UNSPECIFIED in the client
        "status": LOGGED_MODEL_STATUS.get(m.status, m.status),
        "lifecycle_stage": m.lifecycle_stage,
        "tags": kv(m.tags),
    }
    if m.model_type is not None:
        info["model_type"] = m.model_type
    if m.source_run_id is not None:
        info["source_run_id"] = m.source_run_id
    if m.status_message:
        info["status_message"] = m.status_message
    return {
        "info": info,
        "data": {
            "params": kv(m.params),
            "metrics": [metric_json(x, with_run=True) for x in m.metrics],
        },
    }
