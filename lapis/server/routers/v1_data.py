"""Lapis' data API under ``/api/v1``: datastores and data assets.

``POST /datastores`` takes ``{"yaml": "...", "source": "ds.yml"}`` (the file's
text, so errors name lines) or the document itself; it creates the datastore or
replaces the settings of the one with that name, as ``az ml datastore create``
does. No answer ever carries a credential except ``listSecrets``, whose action
(``workspaces/datastores/listsecrets/action``) the Reader role does not have.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import Response, StreamingResponse

from lapis.api import data as api
from lapis.errors import MalformedRequest
from lapis.server.body import json_object
from lapis.server.routers.mlflow._handler import json_response
from lapis.server.routers.v1_tracking import _ws
from lapis.specs.yaml_lines import load

router = APIRouter(prefix="/api/v1", tags=["data"])


def _who(request: Request) -> str | None:
    principal = getattr(request.state, "principal", None)
    return principal.name if principal is not None else None


@router.post("/datastores", responses={200: {"model": api.DatastoreOut}})
async def create_datastore(request: Request) -> Response:
    """Create a datastore, or give the one of that name new settings and credentials."""
    body: dict[str, Any] = await json_object(request)
    source = str(body.pop("source", "<request>"))
    doc: Any = body
    if "yaml" in body:
        if not isinstance(body["yaml"], str):
            raise MalformedRequest("'yaml' must be the text of a datastore file")
        doc = load(body["yaml"], source)
    ws = _ws(request)
    made = await run_in_threadpool(ws.datastores.create_or_update, doc, source, _who(request))
    return json_response(made)


@router.get("/datastores", responses={200: {"model": api.DatastoreList}})
async def list_datastores(request: Request) -> Response:
    """The workspace's own two datastores, then every other by name."""
    found = await run_in_threadpool(_ws(request).datastores.list)
    return json_response({"datastores": found})


@router.get("/datastores/{name}", responses={200: {"model": api.DatastoreOut}})
async def get_datastore(request: Request, name: str) -> Response:
    return json_response(await run_in_threadpool(_ws(request).datastores.get, name))


@router.delete("/datastores/{name}")
async def delete_datastore(request: Request, name: str) -> Response:
    """Forget a datastore; its data stays where it is."""
    await run_in_threadpool(_ws(request).datastores.delete, name)
    return json_response({})


@router.post("/datastores/{name}/listSecrets", responses={200: {"model": api.DatastoreSecrets}})
async def list_secrets(request: Request, name: str) -> Response:
    """The datastore's credential (``az ml datastore`` has no such verb; Azure's REST does)."""
    return json_response(await run_in_threadpool(_ws(request).datastores.secrets, name))


@router.get("/datastores/{name}/browse", responses={200: {"model": api.DatastoreListing}})
async def browse(request: Request, name: str, path: str = "") -> Response:
    """One folder of the datastore (``path`` relative to its container, bucket or folder),
    read with the datastore's credential: the same action as reading that credential."""
    entries = await run_in_threadpool(_ws(request).datastores.browse, name, path)
    return json_response({"name": name, "path": path, "entries": entries})


# --- data assets ------------------------------------------------------------------------
@router.post("/data", responses={200: {"model": api.DataOut}})
async def create_data(request: Request) -> Response:
    """Register a data-asset version (the next integer when ``version`` is left out); its
    ``path`` is a datastore path, a storage URL or a job's output — local data is uploaded
    first (``/data/uploads``)."""
    body: dict[str, Any] = await json_object(request)
    source = str(body.pop("source", "<request>"))
    doc: Any = load(body["yaml"], source) if isinstance(body.get("yaml"), str) else body
    made = await run_in_threadpool(_ws(request).data.create, doc, source, _who(request))
    return json_response(made)


@router.get("/data", responses={200: {"model": api.DataList}})
async def list_data(request: Request, include_archived: bool = False) -> Response:
    """The newest version of each data asset."""
    found = await run_in_threadpool(_ws(request).data.list, include_archived)
    return json_response({"data": found})


@router.get("/data/{name}/versions", responses={200: {"model": api.DataList}})
async def data_versions(request: Request, name: str) -> Response:
    found = await run_in_threadpool(_ws(request).data.versions, name)
    return json_response({"data": found})


@router.get("/data/{name}/versions/{version}", responses={200: {"model": api.DataOut}})
async def get_data(request: Request, name: str, version: str) -> Response:
    """One version; ``latest``: the newest that is not archived."""
    return json_response(await run_in_threadpool(_ws(request).data.get, name, version))


def _files(request: Request) -> Any:
    from lapis.data.reading import AssetFiles

    data = _ws(request).jobs.data
    assert data is not None
    return AssetFiles(data)


@router.get("/data/{name}/versions/{version}/files")
async def data_files(request: Request, name: str, version: str) -> Response:
    """The asset's files (path, size), read where the data is with the datastore's
    credential — so, for a datastore that has one, the caller's role needs listsecrets."""
    principal = getattr(request.state, "principal", None)
    found = await run_in_threadpool(_files(request).files, name, version, principal)
    return json_response(found)


@router.get("/data/{name}/versions/{version}/files/{path:path}")
async def data_file(request: Request, name: str, version: str, path: str) -> Response:
    """One file's bytes, streamed from its datastore (``lapis data download``)."""
    principal = getattr(request.state, "principal", None)
    size, chunks = await run_in_threadpool(_files(request).stream, name, version, path, principal)
    headers = {"Content-Disposition": "attachment", "X-Content-Type-Options": "nosniff"}
    if size is not None:
        headers["Content-Length"] = str(size)
    return StreamingResponse(
        iterate_in_threadpool(chunks), media_type="application/octet-stream", headers=headers
    )


@router.get("/data/{name}/versions/{version}/preview")
async def data_preview(request: Request, name: str, version: str) -> Response:
    """The first rows and a schema of the asset's table (CSV, TSV, JSON lines, Parquet,
    MLTable)."""
    principal = getattr(request.state, "principal", None)
    return json_response(await run_in_threadpool(_files(request).preview, name, version, principal))


@router.get("/data/{name}/jobs")
async def data_readers(request: Request, name: str) -> Response:
    """Lineage: the jobs that read a version of this asset (and with which input); the
    job that made each version is on the version itself (``job``)."""
    ws = _ws(request)
    await run_in_threadpool(ws.data.versions, name)  # 404 for an unknown asset
    return json_response({"jobs": await run_in_threadpool(ws.jobs.reading_asset, name)})


async def _archive(request: Request, name: str, archived: bool) -> Response:
    body: dict[str, Any] = await json_object(request) if await request.body() else {}
    version = body.get("version")
    found = await run_in_threadpool(
        _ws(request).data.archive, name, None if version is None else str(version), archived
    )
    return json_response({"data": found})


@router.post("/data/{name}/archive", responses={200: {"model": api.DataList}})
async def archive_data(request: Request, name: str) -> Response:
    """Hide a version (``{"version": "2"}``) or every version from listings and ``@latest``."""
    return await _archive(request, name, True)


@router.post("/data/{name}/restore", responses={200: {"model": api.DataList}})
async def restore_data(request: Request, name: str) -> Response:
    return await _archive(request, name, False)


@router.post("/data/uploads", responses={200: {"model": api.UploadBegun}})
async def begin_upload(request: Request) -> Response:
    """``{"leaf": "heart", "type": "uri_folder", "files": [{path, size, sha256}, ...]}``."""
    body: dict[str, Any] = await json_object(request)
    files = body.get("files")
    if not isinstance(files, list):
        raise MalformedRequest("'files' must be a list of {path, size, sha256}")
    ws = _ws(request)
    begun = await ws.data.begin_upload(files, str(body.get("leaf", "")), str(body.get("type", "")))
    return json_response(begun)


@router.put("/data/uploads/{upload}/files/{path:path}")
async def upload_data_file(request: Request, upload: str, path: str, offset: int = 0) -> Response:
    """One file of a begun upload (from byte ``offset`` when it resumes), streamed to the
    default datastore and checked."""
    written = await _ws(request).data.upload_file(upload, path, request.stream(), offset)
    return json_response({"path": path, "size": written})
