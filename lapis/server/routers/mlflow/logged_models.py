"""MLflow 3 logged-model endpoints (``mlflow.<flavor>.log_model`` calls these)."""

from __future__ import annotations

from typing import Any

from lapis.errors import InvalidParameterValue
from lapis.server.routers.mlflow._handler import Args, Ctx, Route
from lapis.tracking.mlflow_compat import logged_model_json

_STATUS_IN = {
    "LOGGED_MODEL_PENDING": "PENDING",
    "LOGGED_MODEL_READY": "READY",
    "LOGGED_MODEL_UPLOAD_FAILED": "FAILED",
    "PENDING": "PENDING",
    "READY": "READY",
    "FAILED": "FAILED",
    "1": "PENDING",
    "2": "READY",
    "3": "FAILED",
}


def _json(model: Any) -> dict[str, Any]:
    return {"model": logged_model_json(model)}


def create(a: Args, c: Ctx) -> dict[str, Any]:
    model = c.ws.logged_models.create(
        experiment_id=a.req_str("experiment_id"),
        name=a.str("name"),
        source_run_id=a.str("source_run_id"),
        model_type=a.str("model_type"),
        params=dict(a.kv_list("params")),
        tags=dict(a.kv_list("tags")),
    )
    return _json(model)


def get(a: Args, c: Ctx) -> dict[str, Any]:
    allow = str(a.raw("allow_deleted") or "").lower() == "true"
    return _json(c.ws.logged_models.get(c.path["model_id"], allow_deleted=allow))


def finalize(a: Args, c: Ctx) -> dict[str, Any]:
    raw = str(a.raw("status") or "")
    status = _STATUS_IN.get(raw)
    if status is None:
        raise InvalidParameterValue(f"Invalid value '{raw}' for parameter 'status' supplied")
    return _json(c.ws.logged_models.finalize(c.path["model_id"], status))


def delete(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.logged_models.delete(c.path["model_id"])
    return {}


def log_params(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.logged_models.log_params(c.path["model_id"], dict(a.kv_list("params")))
    return {}


def set_tags(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.logged_models.set_tags(c.path["model_id"], dict(a.kv_list("tags")))
    return {}


def delete_tag(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.logged_models.delete_tag(c.path["model_id"], c.path["tag_key"])
    return {}


def search(a: Args, c: Ctx) -> dict[str, Any]:
    order = []
    for item in a.list("order_by"):
        if not isinstance(item, dict) or not isinstance(item.get("field_name"), str):
            raise InvalidParameterValue(
                f"Invalid order_by entry {item!r}: expected {{'field_name': ..., 'ascending': ...}}"
            )
        order.append((item["field_name"], bool(item.get("ascending", True))))
    models, token = c.ws.logged_models.search(
        a.str_list("experiment_ids"),
        a.str("filter") or "",
        order,
        a.int_or("max_results", 100),
        a.str("page_token"),
        a.list("datasets"),
    )
    out: dict[str, Any] = {"models": [logged_model_json(m) for m in models]}
    if token:
        out["next_page_token"] = token
    return out


def list_artifacts(a: Args, c: Ctx) -> dict[str, Any]:
    """The UI lists a model's files here; paths are relative to the model's folder."""
    from lapis.artifacts.store import clean_relpath, proxied_path

    model = c.ws.logged_models.get(c.path["model_id"])
    base = proxied_path(model.artifact_location)
    if base is None:
        raise InvalidParameterValue(
            f"Model artifacts live at {model.artifact_location}, outside the artifact proxy"
        )
    rel = clean_relpath(a.str("artifact_directory_path") or "")
    full = f"{base}/{rel}" if rel else base
    files = c.ws.artifacts.list(full)
    cut = len(base) + 1
    return {
        "root_uri": model.artifact_location,
        "files": [
            {"path": f.path[cut:], "is_dir": f.is_dir}
            | ({} if f.file_size is None else {"file_size": f.file_size})
            for f in files
        ],
    }


ROUTES: list[Route] = [
    ("POST", "/logged-models", create),
    ("POST", "/logged-models/search", search),
    ("GET", "/logged-models/{model_id}", get),
    ("PATCH", "/logged-models/{model_id}", finalize),
    ("DELETE", "/logged-models/{model_id}", delete),
    ("POST", "/logged-models/{model_id}/params", log_params),
    ("PATCH", "/logged-models/{model_id}/tags", set_tags),
    ("DELETE", "/logged-models/{model_id}/tags/{tag_key}", delete_tag),
    ("GET", "/logged-models/{model_id}/artifacts/directories", list_artifacts),
]
