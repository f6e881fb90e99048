"""Registry entities as MLflow's proto JSON (``RegisteredModel``, ``ModelVersion``).

Versions travel as strings, as the proto declares them; fields that are not
set are left out rather than sent as null, because the client's parser
rejects nulls.
"""

from __future__ import annotations

from typing import Any

from lapis.entities.registry import ModelVersion, RegisteredModel
from lapis.tracking.mlflow_compat import kv

_OPTIONAL_VERSION_FIELDS = (
    "description",
    "user_id",
    "run_id",
    "run_link",
    "model_id",
    "status_message",
)


def model_version_json(mv: ModelVersion) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": mv.name,
        "version": str(mv.version),
        "creation_timestamp": mv.creation_timestamp,
        "last_updated_timestamp": mv.last_updated_timestamp,
        "current_stage": mv.current_stage,
        "source": mv.source,
        "status": mv.status,
        "tags": kv(mv.tags),
        "aliases": list(mv.aliases),
    }
    for name in _OPTIONAL_VERSION_FIELDS:
        value = getattr(mv, name)
        if value is not None and (value != "" or name == "description"):
            out[name] = value  # MLflow's server stores a missing description as ""
    return out


def registered_model_json(m: RegisteredModel) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": m.name,
        "creation_timestamp": m.creation_timestamp,
        "last_updated_timestamp": m.last_updated_timestamp,
        "latest_versions": [model_version_json(mv) for mv in m.latest_versions],
        "tags": kv(m.tags),
        "aliases": [{"alias": a, "version": str(ver)} for a, ver in m.aliases.items()],
    }
    if m.description:
        out["description"] = m.description
    return out
