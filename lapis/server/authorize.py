"""Authorization of a routed request: the route's declared action, then a job's reach.

Installed as an application-wide FastAPI dependency, so every route FastAPI
serves — ours, the studio's, the artifact proxy's, and any added later — passes
through it after routing has found the route's template; the MLflow catch-all
dispatcher calls :func:`authorize_mlflow` itself with its own table. The action
is left in ``request.state.action`` for the audit trail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from lapis.auth.actions import SELF
from lapis.auth.reach import JobReach
from lapis.entities.auth import Principal
from lapis.errors import PermissionDenied
from lapis.server.context import Workspace
from lapis.server.permissions import MLFLOW_ACTIONS, OPEN, action_for


def _ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


async def authorize_route(request: Request) -> None:
    route = request.scope.get("route")
    template = getattr(route, "path", None)
    method = request.method
    if template is None or (method, template) in OPEN:
        return
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # an open path (static files) routed here
        return
    action = action_for(method, template, dict(request.path_params))
    if action is None:
        raise PermissionDenied(f"{method} {template} declares no action; refused")
    request.state.action = action
    ws = _ws(request)
    ws.auth.authorize(principal, action)
    if principal.job is not None and action != SELF and action != "workspaces/read":
        params = request.path_params
        exp = params.get("id_or_name")
        await run_in_threadpool(
            JobReach(ws.tracking).check,
            principal,
            run_ids=[params["run_id"]] if "run_id" in params else [],
            experiment_ids=[exp] if exp and exp.isdigit() else [],
            experiment_names=[exp] if exp and not exp.isdigit() else [],
            registry=action.startswith("workspaces/models/")
            or template.startswith(("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")),
        )


RUN_KEYS = ("run_id", "run_uuid", "source_run_id", "run_ids")


def _strings(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def mlflow_action(method: str, template: str) -> str:
    action = MLFLOW_ACTIONS.get((method, template))
    if action is None:
        raise PermissionDenied(f"{method} /api/2.0/mlflow{template} declares no action; refused")
    return action


def authorize_mlflow(
    ws: Workspace,
    principal: Principal,
    action: str,
    args: Mapping[str, Any],
    path_params: Mapping[str, str],
) -> None:
    """An MLflow route's action, checked; a job's reach checked on the ids it names."""
    ws.auth.authorize(principal, action)
    if principal.job is not None:
        runs = [
            r for key in ("run_id", "run_uuid", "source_run_id") for r in _strings(args.get(key))
        ]
        runs += _strings(args.get("run_ids"))
        exps = _strings(args.get("experiment_id")) + _strings(args.get("experiment_ids"))
        exps += _trace_experiments(ws, args, path_params)
        models = [path_params["model_id"]] if "model_id" in path_params else []
        JobReach(ws.tracking).check(
            principal,
            run_ids=runs,
            experiment_ids=exps,
            experiment_names=_strings(args.get("experiment_name")),
            model_ids=models,
            registry=action.startswith("workspaces/models/"),
        )


def _trace_experiments(
    ws: Workspace, args: Mapping[str, Any], path_params: Mapping[str, str]
) -> list[str]:
    """The experiments a trace call touches: the one a new trace names, the searched
    locations, and those of the traces named by id (a job reaches its own experiment's)."""
    found: list[str] = []
    trace = args.get("trace")
    info = trace.get("trace_info") if isinstance(trace, dict) else None
    places: list[Any] = [info.get("trace_location")] if isinstance(info, dict) else []
    locations = args.get("locations")
    if isinstance(locations, list):
        places += locations
    for place in places:
        exp = (place.get("mlflow_experiment") or {}) if isinstance(place, dict) else {}
        if exp.get("experiment_id") is not None:
            found.append(str(exp["experiment_id"]))
    ids = _strings(args.get("request_ids")) + _strings(args.get("trace_ids"))
    if "trace_id" in path_params:
        ids.append(path_params["trace_id"])
    for trace_id in ids:
        exp_id = ws.traces.store.experiment_of(trace_id)
        if exp_id is not None:
            found.append(exp_id)
    return found
