"""Jobs: the list, one job's page, its live log tail, its files, cancel and re-submit.

The job page is mostly static; two parts stay live. The status block (chip,
reason, timeline, buttons) is a fragment htmx polls every 2 s while the job
has not ended — the last answer, for an ended job, carries no poll trigger and
tells the page (``HX-Trigger: job-ended``) to reload the file list. The log is
a server-sent event stream that reads the same cursor API as ``lapis job
stream`` (the environment build log first, then the job's own output), gives
each event the cursor as its id so a reconnecting browser resumes where it
was, and ends with an ``end`` event once the job is terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import Response, StreamingResponse

from lapis.artifacts.store import FileInfo, clean_relpath, proxied_path
from lapis.entities.job_status import JobStatus
from lapis.entities.jobs import Job
from lapis.errors import InvalidParameterValue, LapisError, ResourceDoesNotExist
from lapis.jobs.outputs import OutputFiles
from lapis.server.studio.web import render
from lapis.util import now_ms

router = APIRouter(include_in_schema=False)

PAGE_SIZES = (25, 50, 100, 200)
LOG_POLL_SECONDS = 0.4
KEEPALIVE_SECONDS = 15.0
REGISTERED_LABEL = re.compile(r"^([A-Za-z0-9][\w.\-]*):([\w.\-]+)$")


def _terminal(job: Job) -> bool:
    return JobStatus(job.status).is_terminal


def duration_ms(job: Job, now: int) -> int | None:
    """How long the job ran (or has run so far); None before it started."""
    if not job.start_time:
        return None
    return (job.end_time or now) - job.start_time


def timeline(job: Job, now: int) -> list[dict[str, Any]]:
    """Each persisted status with its time, how long it lasted and its share of the total."""
    events = sorted(job.events, key=lambda e: e.time)
    out: list[dict[str, Any]] = []
    for i, e in enumerate(events):
        if i + 1 < len(events):
            end: int | None = events[i + 1].time
        else:
            end = None if JobStatus(e.status).is_terminal else now
        out.append(
            {
                "status": e.status,
                "time": e.time,
                "reason": e.reason,
                "ms": None if end is None else max(0, end - e.time),
            }
        )
    total = sum(s["ms"] or 0 for s in out) or 1
    for s in out:
        s["pct"] = round(100 * (s["ms"] or 0) / total, 2)
    return out


def _ctx(ws: Any, name: str) -> dict[str, Any]:
    job = ws.jobs.get(name)
    now = now_ms()
    return {
        "job": job,
        "terminal": _terminal(job),
        "timeline": timeline(job, now),
        "duration": duration_ms(job, now),
    }


# --- list ---------------------------------------------------------------------------
@router.get("/jobs")
async def jobs_list(
    request: Request, status: str = "", compute: str = "", max: int = 50
) -> Response:
    ws = request.app.state.ws
    if max not in PAGE_SIZES:
        raise InvalidParameterValue(f"max must be one of {', '.join(map(str, PAGE_SIZES))}")
    principal = getattr(request.state, "principal", None)
    see_schedules = principal is None or ws.auth.can(principal, "workspaces/schedules/read")

    def gather() -> dict[str, Any]:
        jobs = ws.jobs.list(status=status or None, compute=compute or None, max_results=max)
        now = now_ms()
        names: dict[str, str] = {}
        for exp_id in {str(j.experiment_id) for j in jobs}:
            with contextlib.suppress(ResourceDoesNotExist):
                names[exp_id] = ws.tracking.get_experiment(exp_id).name
        return {
            "rows": [
                {
                    "job": j,
                    "duration": duration_ms(j, now),
                    "experiment": names.get(str(j.experiment_id), j.spec.get("experiment_name")),
                }
                for j in jobs
            ],
            "statuses": [s.value for s in JobStatus],
            "computes": [c.name for c in ws.compute.list()],
            "status": status,
            "compute": compute,
            "max": max,
            "page_sizes": PAGE_SIZES,
            "schedules": ws.schedules.list() if see_schedules else None,
        }

    return render(request, "jobs/list.html", await run_in_threadpool(gather), section="jobs")


# --- one job ------------------------------------------------------------------------
@router.get("/jobs/{name}")
async def job_page(request: Request, name: str) -> Response:
    ws = request.app.state.ws

    def gather() -> dict[str, Any]:
        ctx = _ctx(ws, name)
        job = ctx["job"]
        env_link = None
        registered = REGISTERED_LABEL.match(job.environment or "")
        if registered:  # "name:version"; inline and system environments have no page
            env_name, env_version = registered.groups()
            env_link = f"/environments/{quote(env_name, safe='')}?version={quote(env_version)}"
        services = ws.jobs.services(job) if job.spec.get("services") else []
        return {**ctx, "env_link": env_link, "spec": job.spec, "services": services}

    return render(request, "jobs/detail.html", await run_in_threadpool(gather), section="jobs")


@router.get("/jobs/{name}/status")
async def job_status(request: Request, name: str) -> Response:
    """The live block: chip, reason, timeline, buttons (polled while the job runs)."""
    ctx = await run_in_threadpool(_ctx, request.app.state.ws, name)
    headers = {"HX-Trigger": "job-ended"} if ctx["terminal"] else None
    return render(request, "jobs/_status.html", ctx, headers=headers)


@router.get("/jobs/{name}/steps")
async def job_steps(request: Request, name: str) -> Response:
    """A pipeline's DAG as a graph: steps in waves left to right (each wave reads only
    from the waves before it), an edge from each step to every step that reads its
    output; each box a step's status, live while the pipeline runs, linked to its job."""
    ws = request.app.state.ws

    def gather() -> dict[str, Any]:
        job = ws.jobs.get(name, events=False)
        steps = ws.pipelines.steps(job) if job.type == "pipeline" else []
        return {"job": job, "terminal": _terminal(job), **dag_layout(steps)}

    return render(request, "jobs/_steps.html", await run_in_threadpool(gather))


STEP_W, STEP_H, GAP_X, GAP_Y, PAD = 200, 62, 56, 14, 6


def dag_layout(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Where each step's box and each edge go in the SVG (no script draws it: the
    server's fragment is the picture, so the 2-second poll just replaces it)."""
    wave: dict[str, int] = {}
    for s in steps:  # in order: every step after the steps it reads from
        wave[s["name"]] = 1 + max((wave[a] for a in s["after"]), default=-1)
    columns: dict[int, list[dict[str, Any]]] = {}
    for s in steps:
        columns.setdefault(wave[s["name"]], []).append(s)
    tallest = max((len(c) for c in columns.values()), default=0)
    nodes, at = [], {}
    for w, column in sorted(columns.items()):
        shift = (tallest - len(column)) * (STEP_H + GAP_Y) / 2  # each wave centred
        for i, s in enumerate(column):
            x, y = PAD + w * (STEP_W + GAP_X), PAD + shift + i * (STEP_H + GAP_Y)
            at[s["name"]] = (x, y)
            label = s["component"]
            nodes.append({**s, "x": x, "y": y, "wave": w,
                          "label": label if len(label) <= 30 else label[:29] + "…"})  # fmt: skip
    edges = []
    for s in steps:
        x2, y2 = at[s["name"]]
        for before in s["after"]:
            x1, y1 = at[before]
            x1, y1, y2c = x1 + STEP_W, y1 + STEP_H / 2, y2 + STEP_H / 2
            bend = GAP_X / 2
            edges.append({
                "from": before, "to": s["name"],
                "status": next(n["status"] for n in steps if n["name"] == before),
                "d": f"M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} "
                     f"{x2 - bend:.0f},{y2c:.0f} {x2:.0f},{y2c:.0f}",
            })  # fmt: skip
    width = PAD * 2 + len(columns) * STEP_W + max(len(columns) - 1, 0) * GAP_X
    height = PAD * 2 + tallest * STEP_H + max(tallest - 1, 0) * GAP_Y
    return {"nodes": nodes, "edges": edges, "width": width, "height": height,
            "box": {"w": STEP_W, "h": STEP_H}, "waves": len(columns)}  # fmt: skip


@router.post("/jobs/{name}/cancel")
async def job_cancel(request: Request, name: str) -> Response:
    ws = request.app.state.ws
    principal = getattr(request.state, "principal", None)

    def work() -> dict[str, Any]:
        ws.jobs.cancel(name, principal)
        return _ctx(ws, name)

    ctx = await run_in_threadpool(work)
    return render(request, "jobs/_status.html", {**ctx, "flash": "Cancel requested."})


@router.post("/jobs/{name}/resubmit")
async def job_resubmit(request: Request, name: str) -> Response:
    """Submit the same job again (same spec and snapshot) and go to the new job's page."""
    ws = request.app.state.ws
    principal = getattr(request.state, "principal", None)
    job = await run_in_threadpool(ws.jobs.resubmit, name, principal)
    target = f"/jobs/{quote(job.name, safe='')}"
    return Response(status_code=204, headers={"HX-Redirect": target})


@router.post("/jobs/{name}/outputs/{output}/register")
async def job_output_register(request: Request, name: str, output: str) -> Response:
    """Register a completed job's model output (``mlflow_model``/``custom_model``) as a
    model version, with the job as its lineage; the browser goes to the new version."""
    ws = request.app.state.ws
    form = await request.form()
    model = str(form.get("model") or "").strip()
    principal = getattr(request.state, "principal", None)

    def work() -> Any:
        job = ws.jobs.get(name)
        out = (job.spec.get("outputs") or {}).get(output)
        if out is None or out.get("type") not in ("mlflow_model", "custom_model"):
            raise InvalidParameterValue(f"job {name} has no model output '{output}'")
        if job.status != "Completed":
            raise InvalidParameterValue(f"job {name} is {job.status}: register it once completed")
        spec = {
            "name": model,
            "type": out["type"],
            "path": f"azureml://jobs/{name}/outputs/{output}",
        }
        return ws.models.create(spec, principal)

    made = await run_in_threadpool(work)
    target = f"/models/{quote(made.name, safe='')}/versions/{quote(str(made.version), safe='')}"
    return Response(status_code=204, headers={"HX-Redirect": target})


# --- log tail -----------------------------------------------------------------------
def _sse(event: str, data: str, event_id: str | None = None) -> bytes:
    lines = [f"event: {event}"]
    if event_id:
        lines.append(f"id: {event_id}")
    lines += [f"data: {line}" for line in data.split("\n")]
    return ("\n".join(lines) + "\n\n").encode()


@router.get("/jobs/{name}/log/stream")
async def job_log_stream(request: Request, name: str, cursor: str | None = None) -> Response:
    """New log text as ``log`` events (id = cursor), then ``end`` with the final status."""
    ws = request.app.state.ws
    start = request.headers.get("last-event-id") or cursor
    # a bad cursor is a 400 now, not a broken stream later; an unknown job a 404
    await run_in_threadpool(ws.jobs.logs, name, start)

    def read(at: str | None) -> tuple[str, str, str, bool]:
        # the status is read first: a job that ended before this read has all its log written
        job, text, after = ws.jobs.logs(name, at)
        return text, after, job.status, _terminal(job)

    async def events() -> AsyncIterator[bytes]:
        at = start
        quiet = 0.0
        yield b"retry: 2000\n\n"
        while True:
            text, at, status, terminal = await run_in_threadpool(read, at)
            if text:
                yield _sse("log", text.removesuffix("\n"), at)
                quiet = 0.0
                continue  # more may be waiting (reads come in chunks)
            if terminal:
                yield _sse("end", status)
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(LOG_POLL_SECONDS)
            quiet += LOG_POLL_SECONDS
            if quiet >= KEEPALIVE_SECONDS:
                quiet = 0.0
                yield b": keep-alive\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# --- outputs and artifacts ----------------------------------------------------------
def _artifact_root(ws: Any, job: Job) -> str:
    run = ws.tracking.get_run(job.run_id)
    root = proxied_path(run.info.artifact_uri)
    if not root:
        raise ResourceDoesNotExist(
            f"Job {job.name}'s artifacts are not kept in this server's artifact store"
        )
    return root


@router.get("/jobs/{name}/files")
async def job_files(request: Request, name: str) -> Response:
    """The named outputs — read where the job wrote them, the default datastore for most —
    and the rest of the run's artifacts, with download links."""
    ws = request.app.state.ws
    principal = getattr(request.state, "principal", None)

    def gather() -> dict[str, Any]:
        job = ws.jobs.get(name, events=False)
        files = ws.artifacts.walk_files(_artifact_root(ws, job))
        declared = job.spec.get("outputs") or {}
        outputs: dict[str, list[Any]] = {o: [] for o in declared}
        problems: dict[str, str] = {}
        others = []
        for f in files:
            head, _, rest = f.path.partition("/")
            out_name = rest.partition("/")[0]
            if head == "named-outputs" and out_name in outputs:
                outputs[out_name].append(f)
            else:
                others.append(f)
        reader = OutputFiles(ws.jobs)
        for out_name in reader.stored(name):
            try:
                listed = reader.files(name, out_name, principal)["files"]
            except LapisError as exc:  # a credential this user may not use, a store away
                problems[out_name] = str(exc)
                continue
            outputs[out_name] = [
                FileInfo(f"named-outputs/{out_name}/{f['path']}", False, f["size"]) for f in listed
            ]
        uris = {o: spec.get("uri") for o, spec in declared.items()}
        return {"job": job, "outputs": outputs, "files": others, "terminal": _terminal(job),
                "uris": uris, "problems": problems}  # fmt: skip

    return render(request, "jobs/_files.html", await run_in_threadpool(gather))


@router.get("/jobs/{name}/download")
async def job_download(request: Request, name: str, path: str) -> Response:
    """One file of the job — an output's, from its datastore, or an artifact of its run —
    streamed as an attachment."""
    ws = request.app.state.ws
    principal = getattr(request.state, "principal", None)
    rel = clean_relpath(path)
    if not rel:
        raise InvalidParameterValue("Give the path of a file to download")

    def locate() -> Iterator[bytes]:
        job = ws.jobs.get(name, events=False)
        head, _, rest = rel.partition("/")
        out_name, _, inner = rest.partition("/")
        stored = (job.spec.get("outputs") or {}).get(out_name, {}).get("dest")
        if head == "named-outputs" and stored and inner:
            return OutputFiles(ws.jobs).stream(name, out_name, inner, principal)[1]
        full = f"{_artifact_root(ws, job)}/{rel}"
        if not ws.artifacts.is_file(full):
            raise ResourceDoesNotExist(f"Job {name} has no file '{rel}'")
        return cast(Iterator[bytes], ws.artifacts.iter_read(full))

    chunks = await run_in_threadpool(locate)
    filename = posixpath.basename(rel)
    disposition = f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
    return StreamingResponse(
        iterate_in_threadpool(chunks),
        media_type="application/octet-stream",
        headers={"Content-Disposition": disposition},
    )
