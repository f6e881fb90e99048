"""Lapis' jobs API under ``/api/v1``: submit, list, show, logs, cancel, outputs."""

from __future__ import annotations

import tempfile
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import Response, StreamingResponse

from lapis.api import jobs as api
from lapis.artifacts.snapshot import check_digest
from lapis.artifacts.store import proxied_path
from lapis.entities.job_status import JobStatus
from lapis.entities.jobs import Job
from lapis.errors import RequestTooLarge
from lapis.jobs.outputs import OutputFiles
from lapis.server.body import json_object
from lapis.server.context import Workspace
from lapis.server.routers.mlflow._handler import json_response

router = APIRouter(prefix="/api/v1", tags=["jobs"])
MAX_SNAPSHOT_BYTES = 300 * 1024 * 1024  # compressed; what it expands to is capped too


def _ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


def job_dict(job: Job) -> dict[str, Any]:
    spec = job.spec
    env = spec.get("environment") or {}
    return {
        "name": job.name,
        "type": job.type,
        "display_name": job.display_name or job.name,
        "status": job.status,
        "status_reason": job.status_reason,
        "run_id": job.run_id,
        "experiment_id": job.experiment_id,
        "experiment_name": spec.get("experiment_name"),
        "compute": job.compute,
        "command": spec.get("command"),
        "description": spec.get("description"),
        "tags": spec.get("tags") or {},
        "environment": job.environment,
        "environment_digest": job.environment_digest,
        "image": env.get("image"),
        "code": spec.get("code"),
        "inputs": spec.get("inputs") or {},
        "outputs": spec.get("outputs") or {},
        "environment_variables": spec.get("environment_variables") or {},
        "timeout_seconds": spec.get("timeout_seconds"),
        "exit_code": job.exit_code,
        "created_by": job.created_by,
        "created_at": job.created_at,
        "start_time": job.start_time,
        "end_time": job.end_time,
        "terminal": JobStatus(job.status).is_terminal,
        "events": [{"status": e.status, "time": e.time, "reason": e.reason} for e in job.events],
    }


async def _json(request: Request) -> dict[str, Any]:
    return await json_object(request, allow_empty=False)


@router.head("/snapshots/{digest}")
async def snapshot_exists(request: Request, digest: str) -> Response:
    """200 when the server already has this code snapshot (the client skips the upload)."""
    found = _ws(request).jobs.has_snapshot(digest)
    return Response(status_code=200 if found else 404)


@router.put("/snapshots/{digest}", responses={200: {"model": api.SnapshotStored}})
async def upload_snapshot(request: Request, digest: str) -> Response:
    """A gzip'd tar of the code folder; the server checks it hashes to ``digest``."""
    check_digest(digest)
    with tempfile.TemporaryFile(dir=_ws(request).jobs.home) as spool:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > MAX_SNAPSHOT_BYTES:
                raise RequestTooLarge(
                    f"snapshot upload is over {MAX_SNAPSHOT_BYTES // 2**20} MB compressed; "
                    f"the limit is {MAX_SNAPSHOT_BYTES // 2**20} MB"
                )
            await run_in_threadpool(spool.write, chunk)
        spool.seek(0)
        result = await run_in_threadpool(_ws(request).jobs.store_snapshot, digest, spool)
    return json_response(result)


@router.post("/jobs", status_code=201, responses={201: {"model": api.JobOut}})
async def create_job(request: Request) -> Response:
    """Submit a command job: its YAML text, overrides, base folder, snapshot and conda text."""
    body = await _json(request)
    principal = getattr(request.state, "principal", None)
    job = await run_in_threadpool(_ws(request).jobs.submit, body, principal)
    return json_response(job_dict(job), status=201)


@router.get("/jobs", responses={200: {"model": api.JobList}})
async def list_jobs(
    request: Request,
    status: str | None = None,
    compute: str | None = None,
    experiment_name: str | None = None,
    max_results: int = 50,
) -> Response:
    jobs = await run_in_threadpool(
        _ws(request).jobs.list, status, compute, experiment_name, max_results
    )
    return json_response({"jobs": [job_dict(j) for j in jobs]})


@router.get("/jobs/{name}", responses={200: {"model": api.JobOut}})
async def get_job(request: Request, name: str) -> Response:
    jobs = _ws(request).jobs
    job = await run_in_threadpool(jobs.get, name)
    out = job_dict(job)
    if job.spec.get("services"):  # an interactive job: where its tools are
        out["services"] = await run_in_threadpool(jobs.services, job)
    return json_response(out)


@router.post("/jobs/{name}/cancel", responses={200: {"model": api.JobOut}})
async def cancel_job(request: Request, name: str) -> Response:
    principal = getattr(request.state, "principal", None)
    job = await run_in_threadpool(_ws(request).jobs.cancel, name, principal)
    return json_response(job_dict(job))


@router.get("/jobs/{name}/logs", responses={200: {"model": api.JobLogs}})
async def job_logs(request: Request, name: str, cursor: str | None = None) -> Response:
    """Log text after ``cursor`` plus the next cursor and the job's status (for streaming)."""
    ws = _ws(request)

    def read() -> dict[str, Any]:
        job, text, after = ws.jobs.logs(name, cursor)
        return {
            "data": text,
            "cursor": after,
            "status": job.status,
            "status_reason": job.status_reason,
            "terminal": JobStatus(job.status).is_terminal,
        }

    return json_response(await run_in_threadpool(read))


@router.get("/jobs/{name}/files", responses={200: {"model": api.JobFiles}})
async def job_files(request: Request, name: str) -> Response:
    """Every artifact of the job's run, with the store path to download it from."""
    ws = _ws(request)

    def listing() -> dict[str, Any]:
        job = ws.jobs.get(name, events=False)
        run = ws.tracking.get_run(job.run_id)
        root = proxied_path(run.info.artifact_uri) or ""
        files = [
            {"path": f.path, "size": f.file_size} for f in ws.artifacts.walk_files(root) if root
        ]
        outputs = list(job.spec.get("outputs") or {})
        stored = OutputFiles(ws.jobs).stored(name)
        return {"root": root, "files": files, "outputs": outputs, "stored_outputs": stored}

    return json_response(await run_in_threadpool(listing))


@router.get("/jobs/{name}/steps")
async def job_steps(request: Request, name: str) -> Response:
    """A pipeline's steps in order: each one's status, job, component and the steps it
    reads from (an empty list for a command job)."""
    ws = _ws(request)

    def read() -> list[dict[str, Any]]:
        job = ws.jobs.get(name, events=False)
        return ws.pipelines.steps(job) if job.type == "pipeline" else []

    return json_response({"steps": await run_in_threadpool(read)})


@router.get("/jobs/{name}/outputs/{output}/files", responses={200: {"model": api.JobOutputFiles}})
async def job_output_files(request: Request, name: str, output: str) -> Response:
    """An output's files, read where the job wrote them (the default datastore, or the
    output's own datastore path: reading one with a credential needs listsecrets)."""
    principal = getattr(request.state, "principal", None)
    found = await run_in_threadpool(OutputFiles(_ws(request).jobs).files, name, output, principal)
    return json_response(found)


@router.get("/jobs/{name}/outputs/{output}/files/{path:path}")
async def job_output_file(request: Request, name: str, output: str, path: str) -> Response:
    """One file of an output, streamed from its datastore (``lapis job download``)."""
    principal = getattr(request.state, "principal", None)
    size, chunks = await run_in_threadpool(
        OutputFiles(_ws(request).jobs).stream, name, output, path, principal
    )
    headers = {"Content-Disposition": "attachment", "X-Content-Type-Options": "nosniff"}
    if size is not None:
        headers["Content-Length"] = str(size)
    return StreamingResponse(
        iterate_in_threadpool(chunks), media_type="application/octet-stream", headers=headers
    )
