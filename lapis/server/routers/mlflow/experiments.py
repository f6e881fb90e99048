"""MLflow experiment endpoints."""

from __future__ import annotations

from typing import Any

from lapis.entities.tracking import ViewType
from lapis.errors import InvalidParameterValue
from lapis.server.routers.mlflow._handler import Args, Ctx, Route
from lapis.tracking.mlflow_compat import experiment_json


def view_type(args: Args, name: str) -> ViewType:
    raw = args.raw(name)
    if raw in (None, ""):
        return ViewType.ACTIVE_ONLY
    mapping = {"1": "ACTIVE_ONLY", "2": "DELETED_ONLY", "3": "ALL"}
    try:
        return ViewType(mapping.get(str(raw), str(raw)).upper())
    except ValueError:
        raise InvalidParameterValue(
            f"Invalid value {raw!r} for parameter '{name}': expected ACTIVE_ONLY, DELETED_ONLY "
            "or ALL"
        ) from None


def create(a: Args, c: Ctx) -> dict[str, Any]:
    tags = dict(a.kv_list("tags"))
    exp_id = c.ws.tracking.create_experiment(
        a.req_str("name"), a.str("artifact_location"), tags, c.principal
    )
    return {"experiment_id": exp_id}


def get(a: Args, c: Ctx) -> dict[str, Any]:
    exp = c.ws.tracking.get_experiment(a.req_str("experiment_id"))
    return {"experiment": experiment_json(exp)}


def get_by_name(a: Args, c: Ctx) -> dict[str, Any]:
    exp = c.ws.tracking.get_experiment_by_name(a.req_str("experiment_name"))
    return {"experiment": experiment_json(exp)}


def search(a: Args, c: Ctx) -> dict[str, Any]:
    exps, token = c.ws.tracking.search_experiments(
        view_type=view_type(a, "view_type"),
        max_results=a.int_or("max_results", 1000),
        filter_string=a.str("filter") or "",
        order_by=a.str_list("order_by"),
        page_token=a.str("page_token"),
    )
    out: dict[str, Any] = {"experiments": [experiment_json(e) for e in exps]}
    if token:
        out["next_page_token"] = token
    return out


def update(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.tracking.rename_experiment(a.req_str("experiment_id"), a.str("new_name"))
    return {}


def delete(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.tracking.delete_experiment(a.req_str("experiment_id"))
    return {}


def restore(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.tracking.restore_experiment(a.req_str("experiment_id"))
    return {}


def set_tag(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.tracking.set_experiment_tag(a.req_str("experiment_id"), a.req_str("key"), a.raw("value"))
    return {}


def delete_tag(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.tracking.delete_experiment_tag(a.req_str("experiment_id"), a.req_str("key"))
    return {}


ROUTES: list[Route] = [
    ("POST", "/experiments/create", create),
    ("GET", "/experiments/get", get),
    ("GET", "/experiments/get-by-name", get_by_name),
    ("POST", "/experiments/search", search),
    ("GET", "/experiments/search", search),
    ("POST", "/experiments/update", update),
    ("POST", "/experiments/delete", delete),
    ("POST", "/experiments/restore", restore),
    ("POST", "/experiments/set-experiment-tag", set_tag),
    ("POST", "/experiments/delete-experiment-tag", delete_tag),
]
