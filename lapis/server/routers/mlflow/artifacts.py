"""MLflow's artifact proxy: ``/api/2.0/mlflow-artifacts/artifacts``.

``mlflow-artifacts:/<path>`` URIs resolve here, so a client on any machine
stores artifacts through the server without credentials for the storage
behind it. Uploads stream from the socket into the store; downloads of local
files go out with sendfile, others in chunks.
"""

from __future__ import annotations

import mimetypes
import posixpath
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import FileResponse, Response, StreamingResponse

from lapis.artifacts.store import ArtifactStore, clean_relpath
from lapis.auth.reach import JobReach
from lapis.errors import InvalidParameterValue, PermissionDenied, ResourceDoesNotExist
from lapis.server.routers.mlflow._handler import json_response
from lapis.tracking.artifact_owner import artifact_owner

router = APIRouter(tags=["mlflow-artifacts"])
PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")


def _store(request: Request) -> ArtifactStore:
    store: ArtifactStore = request.app.state.ws.artifacts
    return store


def _job_reach(request: Request, rel: str) -> None:
    """A job's token reaches the artifacts of its own run (and runs it started) only."""
    principal = request.state.principal
    if principal.job is None:
        return
    tracking = request.app.state.ws.tracking
    owner = artifact_owner(tracking, rel)
    JobReach(tracking).check(
        principal,
        run_ids=[owner.id] if owner is not None and owner.kind == "run" else [],
        model_ids=[owner.id] if owner is not None and owner.kind == "logged_model" else [],
        experiment_ids=[owner.experiment_id] if owner is not None and owner.kind == "trace" else [],
    )


async def _owned(request: Request, artifact_path: str, verb: str) -> str:
    """The clean path, once it is known to lie below one run's or logged model's root."""
    rel = clean_relpath(artifact_path)
    if not rel:
        raise InvalidParameterValue(f"Artifact path must name a file or folder to {verb}")
    owner = await run_in_threadpool(artifact_owner, request.app.state.ws.tracking, rel)
    if owner is None:
        raise PermissionDenied(
            f"Artifact path '{artifact_path}' is not inside one run's or logged model's "
            f"artifacts; only paths below <run>/artifacts/ can be {verb}d through the proxy"
        )
    await run_in_threadpool(_job_reach, request, rel)
    return rel


async def drain(request: Request, limit: int = 64 * 2**20) -> None:
    """Read what is left of a failed upload's body (up to ``limit``), so the client gets
    the answer instead of a connection reset while it is still sending."""
    seen = 0
    while seen < limit:
        message = await request.receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body"):
            return


async def upload(request: Request, artifact_path: str) -> Response:
    rel = await _owned(request, artifact_path, "update")
    try:
        await _store(request).write_stream(rel, request.stream())
    except OSError:  # a full disk, say: answered 507 by the error handler
        await drain(request)
        raise
    return json_response({})


# Shown as text by MLflow's UI and sent as text/plain by its server: configs, logs, code,
# tables and the extension-less MLmodel/MLproject files.
TEXT_TYPES = frozenset(
    "txt log err cfg conf cnf cf ini properties prop hocon toml yaml yml xml json js py py3 "
    "csv tsv md rst ipynb MLmodel MLproject".split()
)


def download_headers(rel: str) -> tuple[str, dict[str, str]]:
    """Content type from the file's name, as MLflow's server sends it, and always as an
    attachment with ``nosniff``: an uploaded HTML or SVG file is never shown as a page of
    this origin (where it could run script with a signed-in user's rights)."""
    name = posixpath.basename(rel) or "artifact"
    stem, dot, ext = name.rpartition(".")
    if (ext if dot and stem else name) in TEXT_TYPES:
        kind = "text/plain"
    else:
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return kind, {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
        "X-Content-Type-Options": "nosniff",
    }


async def download(request: Request, artifact_path: str) -> Response:
    store = _store(request)
    rel = clean_relpath(artifact_path)
    await run_in_threadpool(_job_reach, request, rel)
    if not await run_in_threadpool(store.is_file, rel):
        raise ResourceDoesNotExist(f"Artifact '{artifact_path}' does not exist")
    kind, headers = download_headers(rel)
    local = store.local_path(rel)
    if local is not None:
        return FileResponse(local, media_type=kind, headers=headers)
    return StreamingResponse(
        iterate_in_threadpool(store.iter_read(rel)), media_type=kind, headers=headers
    )


async def list_artifacts(request: Request, path: str = "") -> Response:
    rel = clean_relpath(path)
    await run_in_threadpool(_job_reach, request, f"{rel}/." if rel else rel)
    files = await run_in_threadpool(_store(request).list, rel)
    prefix = f"{rel}/" if rel else ""
    return json_response(
        {
            "files": [
                {"path": f.path[len(prefix) :], "is_dir": f.is_dir}
                | ({} if f.file_size is None else {"file_size": f.file_size})
                for f in files
            ]
        }
    )


async def delete(request: Request, artifact_path: str) -> Response:
    """Deletes reach one run's or logged model's files, never a root: ``.``, ``%2e``, an
    experiment's folder or the registry's model versions are refused before anything
    is touched."""
    rel = await _owned(request, artifact_path, "delete")
    await run_in_threadpool(_store(request).delete, rel)
    return json_response({})


for i, prefix in enumerate(PREFIXES):
    for method, path, endpoint in (
        ("PUT", "/artifacts/{artifact_path:path}", upload),
        ("GET", "/artifacts/{artifact_path:path}", download),
        ("DELETE", "/artifacts/{artifact_path:path}", delete),
        ("GET", "/artifacts", list_artifacts),
    ):
        router.add_api_route(
            prefix + path,
            endpoint,
            methods=[method],
            include_in_schema=i == 0,
            name=f"{endpoint.__name__}_{i}",
        )
