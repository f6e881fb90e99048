"""Traces in the studio: a run's and an experiment's lists, and one trace as a span tree
(a waterfall of its spans, each opening to its inputs, outputs and attributes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.errors import ResourceDoesNotExist
from lapis.server.studio.web import render
from lapis.tracking.span_tree import build, flatten

router = APIRouter(include_in_schema=False)


@router.get("/traces/{trace_id}")
async def trace_page(request: Request, trace_id: str) -> Response:
    ws = request.app.state.ws

    def gather() -> dict[str, Any]:
        trace = ws.traces.get(trace_id)
        try:
            experiment = ws.tracking.get_experiment(trace.experiment_id)
        except ResourceDoesNotExist:
            experiment = None
        roots = build(ws.traces.spans(trace))
        return {
            "trace": trace,
            "experiment": experiment,
            "spans": flatten(roots),
            "tags": sorted((k, v) for k, v in trace.tags.items() if not k.startswith("mlflow.")),
            "metadata": sorted(trace.trace_metadata.items()),
        }

    ctx = await run_in_threadpool(gather)
    return render(request, "runs/trace.html", ctx, section="experiments")


@router.get("/experiments/{experiment_id}/traces")
async def experiment_traces(request: Request, experiment_id: str) -> Response:
    ws = request.app.state.ws

    def gather() -> dict[str, Any]:
        experiment = ws.tracking.get_experiment(experiment_id)
        found, _ = ws.traces.search([experiment.experiment_id], max_results=500)
        return {"experiment": experiment, "traces": found}

    ctx = await run_in_threadpool(gather)
    return render(request, "runs/traces.html", ctx, section="experiments")
