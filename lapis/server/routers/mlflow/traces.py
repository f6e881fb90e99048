"""MLflow 3 trace endpoints: ``@mlflow.trace``/``mlflow.start_span`` export, get, search,
tags and deletion (``lapis.tracking.traces``).

Two sets: ``V3_ROUTES`` under ``/api/3.0/mlflow`` (StartTraceV3, GetTraceInfoV3,
SearchTracesV3) and ``ROUTES`` under ``/api/2.0/mlflow`` (tags and deletion, which
MLflow's client still sends to the v2 paths).
"""

from __future__ import annotations

from typing import Any

from lapis.errors import InvalidParameterValue, MalformedRequest
from lapis.server.routers.mlflow._handler import Args, Ctx, Route
from lapis.tracking.traces import trace_info_json


def start(a: Args, c: Ctx) -> dict[str, Any]:
    """StartTraceV3: record a finished trace; its answer says where the spans go."""
    trace = a.raw("trace")
    info = trace.get("trace_info") if isinstance(trace, dict) else None
    if not isinstance(info, dict):
        raise MalformedRequest("the body must be {'trace': {'trace_info': {...}}}")
    saved = c.ws.traces.start(info, c.principal)
    return {"trace": {"trace_info": trace_info_json(saved)}}


def get_info(a: Args, c: Ctx) -> dict[str, Any]:
    """GetTraceInfoV3 (``/traces/get`` lands here too and answers MLflow's "not found",
    so the client reads the spans from the artifact store, where they are)."""
    return {"trace": {"trace_info": trace_info_json(c.ws.traces.get(c.path["trace_id"]))}}


def search(a: Args, c: Ctx) -> dict[str, Any]:
    """SearchTracesV3: ``locations`` name experiments; MLflow's trace filter grammar."""
    experiments = []
    for loc in a.list("locations"):
        exp = (
            (loc.get("mlflow_experiment") or {}).get("experiment_id")
            if isinstance(loc, dict)
            else None
        )
        if exp is None:
            raise InvalidParameterValue(
                "each of 'locations' must be {'type': 'MLFLOW_EXPERIMENT', "
                "'mlflow_experiment': {'experiment_id': ...}}"
            )
        experiments.append(str(exp))
    experiments += a.str_list("experiment_ids")  # the v2 request's spelling
    found, token = c.ws.traces.search(
        experiments,
        a.str("filter"),
        a.int_or("max_results", 100),
        a.str_list("order_by"),
        a.str("page_token"),
    )
    out: dict[str, Any] = {"traces": [trace_info_json(t) for t in found]}
    if token:
        out["next_page_token"] = token
    return out


def set_tag(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.traces.set_tag(c.path["trace_id"], a.raw("key"), a.raw("value"))
    return {}


def delete_tag(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.traces.delete_tag(c.path["trace_id"], a.req_str("key"))
    return {}


def delete_traces(a: Args, c: Ctx) -> dict[str, Any]:
    deleted = c.ws.traces.delete(
        a.req_str("experiment_id"),
        trace_ids=a.str_list("request_ids") or a.str_list("trace_ids"),
        max_timestamp_millis=a.int("max_timestamp_millis"),
        max_traces=a.int("max_traces"),
    )
    return {"traces_deleted": deleted}


V3_ROUTES: list[Route] = [
    ("POST", "/traces", start),
    ("POST", "/traces/search", search),
    ("GET", "/traces/{trace_id}", get_info),
]
ROUTES: list[Route] = [
    ("GET", "/traces", search),  # v2 SearchTraces: experiment_ids
    ("GET", "/traces/{trace_id}/info", get_info),
    ("PATCH", "/traces/{trace_id}/tags", set_tag),
    ("DELETE", "/traces/{trace_id}/tags", delete_tag),
    ("POST", "/traces/delete-traces", delete_traces),
]
