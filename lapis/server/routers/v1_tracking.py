"""Lapis' own tracking API under ``/api/v1`` (used by the CLI and the native SDK)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.api import tracking as api
from lapis.api.tracking import CreateRunRequest, EndRunRequest, LogRequest, inline_refs
from lapis.auth.actions import ACTIONS
from lapis.entities.tracking import Experiment, Run, ViewType
from lapis.errors import InvalidParameterValue, ResourceDoesNotExist
from lapis.server.body import json_object
from lapis.server.context import Workspace
from lapis.server.routers.mlflow._handler import json_response
from lapis.tracking.columnar import parse_log_body
from lapis.tracking.mlflow_compat import float_out

router = APIRouter(prefix="/api/v1", tags=["tracking"])


def _ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


def experiment_dict(e: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": e.experiment_id,
        "name": e.name,
        "artifact_location": e.artifact_location,
        "lifecycle_stage": e.lifecycle_stage,
        "creation_time": e.creation_time,
        "last_update_time": e.last_update_time,
        "tags": e.tags,
    }


def run_dict(r: Run) -> dict[str, Any]:
    i = r.info
    return {
        "run_id": i.run_id,
        "run_name": i.run_name,
        "experiment_id": i.experiment_id,
        "status": i.status,
        "start_time": i.start_time,
        "end_time": i.end_time,
        "user_id": i.user_id,
        "created_by": i.created_by,
        "artifact_uri": i.artifact_uri,
        "lifecycle_stage": i.lifecycle_stage,
        "params": r.params,
        "tags": r.tags,
        "metrics": {
            m.key: {"value": float_out(m.value), "step": m.step, "timestamp": m.timestamp}
            for m in r.metrics
        },
    }


def _experiment(ws: Workspace, id_or_name: str) -> Experiment:
    if id_or_name.isdigit():
        try:
            return ws.tracking.get_experiment(id_or_name)
        except ResourceDoesNotExist:
            pass
    return ws.tracking.get_experiment_by_name(id_or_name)


@router.get("/whoami", responses={200: {"model": api.WhoAmI}})
async def whoami(request: Request) -> dict[str, Any]:
    """The principal behind the token that made this call."""
    p = request.state.principal
    actions = [a for a in ACTIONS if _ws(request).auth.can(p, a)]
    return {
        "user_id": p.user_id,
        "name": p.name,
        "role": p.role,
        "roles": list(p.roles),
        "job": p.job.job if p.job else None,
        "actions": actions,
    }


@router.get("/experiments", responses={200: {"model": api.ExperimentList}})
async def list_experiments(request: Request, view: str = "active") -> Response:
    views = {"active": ViewType.ACTIVE_ONLY, "deleted": ViewType.DELETED_ONLY, "all": ViewType.ALL}
    if view not in views:
        raise InvalidParameterValue(f"view must be one of active, deleted, all (got '{view}')")
    exps, _ = await run_in_threadpool(_ws(request).tracking.search_experiments, views[view], 50_000)
    return json_response({"experiments": [experiment_dict(e) for e in exps]})


@router.get("/experiments/{id_or_name}", responses={200: {"model": api.ExperimentOut}})
async def get_experiment(request: Request, id_or_name: str) -> Response:
    exp = await run_in_threadpool(_experiment, _ws(request), id_or_name)
    return json_response(experiment_dict(exp))


@router.post("/runs", responses={200: {"model": api.RunOut}})
async def create_run(request: Request, body: CreateRunRequest) -> Response:
    ws = _ws(request)

    def work() -> Run:
        exp_id = body.experiment_id
        if exp_id is None and body.experiment_name:
            exp_id = ws.tracking.get_or_create_experiment(
                body.experiment_name, request.state.principal
            ).experiment_id
        return ws.tracking.create_run(
            exp_id,
            run_name=body.run_name,
            start_time=body.start_time,
            tags=body.tags,
            principal=request.state.principal,
        )

    return json_response(run_dict(await run_in_threadpool(work)))


@router.get("/runs", responses={200: {"model": api.RunList}})
async def search_runs(
    request: Request,
    experiment: str | None = None,
    filter: str = "",
    order_by: str | None = None,
    max_results: int = 100,
    page_token: str | None = None,
) -> Response:
    ws = _ws(request)

    def work() -> tuple[list[Run], str | None]:
        if experiment is None:
            ids: list[object] = [e.experiment_id for e in ws.tracking.search_experiments()[0]]
        else:
            ids = [_experiment(ws, experiment).experiment_id]
        return ws.tracking.search_runs(
            ids,
            filter,
            max_results=max_results,
            order_by=[order_by] if order_by else None,
            page_token=page_token,
        )

    runs, token = await run_in_threadpool(work)
    return json_response({"runs": [run_dict(r) for r in runs], "next_page_token": token})


@router.get("/runs/{run_id}", responses={200: {"model": api.RunOut}})
async def get_run(request: Request, run_id: str) -> Response:
    return json_response(run_dict(await run_in_threadpool(_ws(request).tracking.get_run, run_id)))


@router.get(
    "/runs/{run_id}/metrics/{key:path}/history", responses={200: {"model": api.MetricHistory}}
)
async def metric_history(request: Request, run_id: str, key: str) -> Response:
    points, _ = await run_in_threadpool(_ws(request).tracking.metric_history, run_id, key)
    return json_response(
        {
            "key": key,
            "points": [
                {"value": float_out(p.value), "step": p.step, "timestamp": p.timestamp}
                for p in points
            ],
        }
    )


@router.post(
    "/runs/{run_id}/log",
    responses={200: {"model": api.Logged}},
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": inline_refs(LogRequest)}},
            "required": True,
        }
    },
)
async def log(request: Request, run_id: str) -> Response:
    """Columnar batch of metrics plus params and tags, written in one transaction.

    The body is checked by :func:`lapis.tracking.columnar.parse_log_body`.
    """
    parsed = parse_log_body(await json_object(request, allow_empty=False))
    n = await run_in_threadpool(
        _ws(request).tracking.log_columns,
        run_id,
        parsed.keys,
        parsed.values,
        parsed.steps,
        parsed.timestamps,
        parsed.params,
        parsed.tags,
    )
    return json_response({"metrics": n})


@router.post("/runs/{run_id}/end", responses={200: {"model": api.RunOut}})
async def end_run(request: Request, run_id: str, body: EndRunRequest) -> Response:
    ws = _ws(request)

    def work() -> Run:
        ws.tracking.update_run(run_id, status=body.status, end_time=body.end_time)
        return ws.tracking.get_run(run_id)

    return json_response(run_dict(await run_in_threadpool(work)))
