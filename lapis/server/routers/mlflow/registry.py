"""MLflow model-registry endpoints: registered models, versions, aliases and tags."""

from __future__ import annotations

from typing import Any

from lapis.errors import InvalidParameterValue
from lapis.registry.mlflow_compat import model_version_json, registered_model_json
from lapis.server.routers.mlflow._handler import Args, Ctx, Route


def _version(a: Args) -> object:
    """``version`` is a string in the proto; a JSON number is accepted too."""
    value = a.raw("version")
    if value is None or value == "":
        raise InvalidParameterValue(
            "Missing value for required parameter 'version'. See the API docs for more "
            "information about request parameters."
        )
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidParameterValue(
            f"Invalid value {value!r} for parameter 'version' supplied: expected a string"
        )
    return value


def _bool(a: Args, name: str) -> bool:
    value = a.raw(name)
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidParameterValue(
        f"Invalid value {value!r} for parameter '{name}' supplied: expected a boolean"
    )


def _paged(key: str, items: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {key: items}
    if token:
        out["next_page_token"] = token
    return out


# --- registered models ------------------------------------------------------
def create_model(a: Args, c: Ctx) -> dict[str, Any]:
    model = c.ws.registry.create_registered_model(
        a.req_str("name"),
        tags=dict(a.kv_list("tags")),
        description=a.str("description"),
        principal=c.principal,
    )
    return {"registered_model": registered_model_json(model)}


def get_model(a: Args, c: Ctx) -> dict[str, Any]:
    return {
        "registered_model": registered_model_json(
            c.ws.registry.get_registered_model(a.req_str("name"))
        )
    }


def rename_model(a: Args, c: Ctx) -> dict[str, Any]:
    model = c.ws.registry.rename_registered_model(a.req_str("name"), a.req_str("new_name"))
    return {"registered_model": registered_model_json(model)}


def update_model(a: Args, c: Ctx) -> dict[str, Any]:
    model = c.ws.registry.update_registered_model(a.req_str("name"), a.str("description"))
    return {"registered_model": registered_model_json(model)}


def delete_model(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.registry.delete_registered_model(a.req_str("name"))
    return {}


def search_models(a: Args, c: Ctx) -> dict[str, Any]:
    models, token = c.ws.registry.search_registered_models(
        filter_string=a.str("filter") or "",
        max_results=a.int_or("max_results", 100),
        order_by=a.str_list("order_by"),
        page_token=a.str("page_token") or None,
    )
    return _paged("registered_models", [registered_model_json(m) for m in models], token)


def latest_versions(a: Args, c: Ctx) -> dict[str, Any]:
    versions = c.ws.registry.get_latest_versions(a.req_str("name"), a.str_list("stages"))
    return {"model_versions": [model_version_json(mv) for mv in versions]}


def set_model_tag(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.registry.set_registered_model_tag(a.req_str("name"), a.req_str("key"), a.raw("value"))
    return {}


def delete_model_tag(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.registry.delete_registered_model_tag(a.req_str("name"), a.req_str("key"))
    return {}


def set_alias(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.registry.set_alias(a.req_str("name"), a.req_str("alias"), _version(a))
    return {}


def delete_alias(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.registry.delete_alias(a.req_str("name"), a.req_str("alias"))
    return {}


def get_by_alias(a: Args, c: Ctx) -> dict[str, Any]:
    mv = c.ws.registry.get_version_by_alias(a.req_str("name"), a.req_str("alias"))
    return {"model_version": model_version_json(mv)}


# --- model versions -----------------------------------------------------------
def create_version(a: Args, c: Ctx) -> dict[str, Any]:
    mv = c.ws.registry.create_model_version(
        a.req_str("name"),
        a.req_str("source"),
        run_id=a.str("run_id"),
        tags=dict(a.kv_list("tags")),
        run_link=a.str("run_link"),
        description=a.str("description") or "",  # as MLflow's server: "" when not given
        model_id=a.str("model_id"),
        principal=c.principal,
    )
    return {"model_version": model_version_json(mv)}


def get_version(a: Args, c: Ctx) -> dict[str, Any]:
    mv = c.ws.registry.get_model_version(a.req_str("name"), _version(a))
    return {"model_version": model_version_json(mv)}


def update_version(a: Args, c: Ctx) -> dict[str, Any]:
    mv = c.ws.registry.update_model_version(a.req_str("name"), _version(a), a.str("description"))
    return {"model_version": model_version_json(mv)}


def delete_version(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.registry.delete_model_version(a.req_str("name"), _version(a))
    return {}


def search_versions(a: Args, c: Ctx) -> dict[str, Any]:
    versions, token = c.ws.registry.search_model_versions(
        filter_string=a.str("filter") or "",
        max_results=a.int_or("max_results", 10_000),
        order_by=a.str_list("order_by"),
        page_token=a.str("page_token") or None,
    )
    return _paged("model_versions", [model_version_json(mv) for mv in versions], token)


def download_uri(a: Args, c: Ctx) -> dict[str, Any]:
    return {"artifact_uri": c.ws.registry.get_download_uri(a.req_str("name"), _version(a))}


def transition_stage(a: Args, c: Ctx) -> dict[str, Any]:
    mv = c.ws.registry.transition_stage(
        a.req_str("name"),
        _version(a),
        a.req_str("stage"),
        archive_existing_versions=_bool(a, "archive_existing_versions"),
    )
    return {"model_version": model_version_json(mv)}


def set_version_tag(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.registry.set_model_version_tag(
        a.req_str("name"), _version(a), a.req_str("key"), a.raw("value")
    )
    return {}


def delete_version_tag(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.registry.delete_model_version_tag(a.req_str("name"), _version(a), a.req_str("key"))
    return {}


ROUTES: list[Route] = [
    ("POST", "/registered-models/create", create_model),
    ("GET", "/registered-models/get", get_model),
    ("POST", "/registered-models/rename", rename_model),
    ("PATCH", "/registered-models/update", update_model),
    ("DELETE", "/registered-models/delete", delete_model),
    ("GET", "/registered-models/search", search_models),
    ("GET", "/registered-models/get-latest-versions", latest_versions),
    ("POST", "/registered-models/get-latest-versions", latest_versions),
    ("POST", "/registered-models/set-tag", set_model_tag),
    ("DELETE", "/registered-models/delete-tag", delete_model_tag),
    ("POST", "/registered-models/alias", set_alias),
    ("DELETE", "/registered-models/alias", delete_alias),
    ("GET", "/registered-models/alias", get_by_alias),
    ("POST", "/model-versions/create", create_version),
    ("GET", "/model-versions/get", get_version),
    ("PATCH", "/model-versions/update", update_version),
    ("DELETE", "/model-versions/delete", delete_version),
    ("GET", "/model-versions/search", search_versions),
    ("GET", "/model-versions/get-download-uri", download_uri),
    ("POST", "/model-versions/transition-stage", transition_stage),
    ("POST", "/model-versions/set-tag", set_version_tag),
    ("DELETE", "/model-versions/delete-tag", delete_version_tag),
]
