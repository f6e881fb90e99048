"""A run's page: overview, params, metric charts, artifacts; and the series JSON its charts read.

The charts are drawn in the browser by ``static/charts.js`` (uPlot) from
``GET /ui/runs/{run_id}/metric-series``, which downsamples on the server
(:mod:`lapis.server.studio.series`): a million-point series arrives as at
most ``points`` points that keep every bucket's min and max. The artifacts
browser lists one folder at a time (``?path=``; htmx swaps only the listing)
and downloads stream from the artifact store with a Content-Disposition.
"""

from __future__ import annotations

import posixpath
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import FileResponse, Response, StreamingResponse

from lapis.artifacts.store import clean_relpath, proxied_path
from lapis.entities.tracking import Run
from lapis.errors import InvalidParameterValue, LapisError, ResourceDoesNotExist
from lapis.server.studio.web import render

router = APIRouter(include_in_schema=False)

MAX_CHART_KEYS = 50
SOURCE_TAGS = (
    ("Source", "mlflow.source.name"),
    ("Source type", "mlflow.source.type"),
    ("Git commit", "mlflow.source.git.commit"),
    ("Git branch", "mlflow.source.git.branch"),
    ("Git repo", "mlflow.source.git.repoURL"),
)
JOB_TAG = "lapis.job.name"


def artifact_base(run: Run) -> str | None:
    """The run's artifact folder inside the server's store, or None when it lives elsewhere."""
    return proxied_path(run.info.artifact_uri)


def list_artifacts(ws: Any, run: Run, path: str) -> dict[str, Any]:
    rel = clean_relpath(path)
    base = artifact_base(run)
    if base is None:
        return {"outside": run.info.artifact_uri, "path": rel, "entries": [], "parents": []}
    full = f"{base}/{rel}" if rel else base
    cut = len(base) + 1
    entries = [
        {
            "path": f.path[cut:],
            "name": posixpath.basename(f.path),
            "is_dir": f.is_dir,
            "size": f.file_size,
        }
        for f in ws.artifacts.list(full)
    ]
    parents = []
    if rel:
        parts = rel.split("/")
        parents = [("/".join(parts[: i + 1]), parts[i]) for i in range(len(parts))]
    return {"outside": None, "path": rel, "entries": entries, "parents": parents}


def _overview(ws: Any, run: Run) -> dict[str, Any]:
    info = run.info
    try:
        experiment = ws.tracking.get_experiment(info.experiment_id)
    except ResourceDoesNotExist:
        experiment = None
    duration = None
    if info.start_time and info.end_time:
        duration = info.end_time - info.start_time
    return {
        "experiment": experiment,
        "duration": duration,
        "source": [(label, run.tags[t]) for label, t in SOURCE_TAGS if run.tags.get(t)],
        "job": run.tags.get(JOB_TAG),
        "user": info.created_by or info.user_id or run.tags.get("mlflow.user"),
    }


LIVE_STATUSES = ("RUNNING", "SCHEDULED")


def _live_context(ws: Any, run_id: str) -> dict[str, Any]:
    """What the changing part of a run's page shows (status, times, params, latest values)."""
    run = ws.tracking.get_run(run_id)
    return {
        "run": run,
        "live": run.info.status in LIVE_STATUSES,
        "metrics": sorted(run.metrics, key=lambda m: m.key),
        "params": sorted(run.params.items()),
        **_overview(ws, run),
    }


@router.get("/runs/{run_id}/live")
async def run_live(request: Request, run_id: str) -> Response:
    """The run's changing part, polled by its page while it runs; 286 once it has ended
    (htmx swaps that last answer in and stops polling)."""
    ws = request.app.state.ws
    ctx = await run_in_threadpool(_live_context, ws, run_id)
    ctx["live_swap"] = True
    return render(request, "runs/_live.html", ctx, status=200 if ctx["live"] else 286)


@router.get("/runs/{run_id}")
async def run_page(request: Request, run_id: str, path: str = "") -> Response:
    ws = request.app.state.ws

    def gather() -> dict[str, Any]:
        ctx = _live_context(ws, run_id)
        run = ctx["run"]
        ctx["tags"] = sorted(run.tags.items())
        ctx["artifacts"] = list_artifacts(ws, run, path)
        ctx["traces"] = ws.traces.of_run(run.info.run_id, run.info.experiment_id)
        return ctx

    ctx = await run_in_threadpool(gather)
    run = ctx["run"]
    keys = [m.key for m in ctx["metrics"]]
    ctx["chart_config"] = {
        "runId": run.info.run_id,
        "keys": keys,
        "selected": keys[:MAX_CHART_KEYS],
        "seriesUrl": f"/ui/runs/{quote(run.info.run_id)}/metric-series",
    }
    return render(request, "runs/run.html", ctx, section="experiments")


@router.get("/runs/{run_id}/artifacts")
async def artifacts_fragment(request: Request, run_id: str, path: str = "") -> Response:
    ws = request.app.state.ws

    def gather() -> dict[str, Any]:
        run = ws.tracking.get_run(run_id)
        return {"run": run, "artifacts": list_artifacts(ws, run, path)}

    return render(request, "runs/_artifacts.html", await run_in_threadpool(gather))


@router.get("/runs/{run_id}/artifacts/download")
async def download_artifact(request: Request, run_id: str, path: str) -> Response:
    ws = request.app.state.ws
    run = await run_in_threadpool(ws.tracking.get_run, run_id)
    base = artifact_base(run)
    rel = clean_relpath(path)
    if base is None:
        raise InvalidParameterValue(
            f"This run's artifacts live at {run.info.artifact_uri}, outside the server's store"
        )
    if not rel:
        raise InvalidParameterValue("path must name a file")
    full = f"{base}/{rel}"
    if not await run_in_threadpool(ws.artifacts.is_file, full):
        raise ResourceDoesNotExist(f"Artifact '{rel}' does not exist in run {run_id}")
    name = posixpath.basename(rel)
    disposition = f"attachment; filename*=UTF-8''{quote(name, safe='')}"
    headers = {"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"}
    local = ws.artifacts.local_path(full)
    if local is not None:
        return FileResponse(local, media_type="application/octet-stream", headers=headers)
    return StreamingResponse(
        iterate_in_threadpool(ws.artifacts.iter_read(full)),
        media_type="application/octet-stream",
        headers=headers,
    )


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
    )


@router.get("/ui/runs/{run_id}/metric-series")
async def metric_series(
    request: Request,
    run_id: str,
    keys: str = "",
    x: str = "step",
    points: int = 1000,
    lo: int | None = None,
    hi: int | None = None,
) -> Response:
    """``{"x": "step", "series": {key: {"x": [...], "y": [...], "total": n}}}``.

    ``lo``/``hi`` (both or neither) limit the x range, in steps or epoch ms: a
    zoomed chart asks again for its window at full resolution. Errors are JSON
    (``{"error": message}``) so that the chart can show them.
    """
    ws = request.app.state.ws
    wanted = [k for k in keys.split(",") if k][:MAX_CHART_KEYS]

    def work() -> dict[str, Any]:
        if (lo is None) != (hi is None):
            raise InvalidParameterValue("lo and hi go together: give both or neither")
        window = (lo, hi) if lo is not None and hi is not None else None
        if window and window[0] > window[1]:
            raise InvalidParameterValue(f"lo ({lo}) must not be greater than hi ({hi})")
        series = ws.tracking.metric_series(run_id, wanted, x, points, window)
        return {"x": x, "series": series}

    try:
        return _json(await run_in_threadpool(work))
    except LapisError as exc:
        return _json({"error": exc.message}, exc.http_status)
