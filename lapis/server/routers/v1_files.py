"""The workspace's file share under ``/api/v1/files`` (``lapis file``, the Notebooks page):
list, download, upload (streamed), make a folder, rename, delete. Who may do what at
which path is decided by the share itself (lapis/notebooks/fileshare.py)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response

from lapis.api import files as api
from lapis.errors import MalformedRequest
from lapis.server.body import json_object
from lapis.server.context import Workspace
from lapis.server.routers.mlflow._handler import json_response

router = APIRouter(prefix="/api/v1", tags=["files"])


def _ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


def _who(request: Request) -> Any:
    return getattr(request.state, "principal", None)


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MalformedRequest(f"'{key}' must be a path in the file share")
    return value


@router.get("/files", responses={200: {"model": api.FileListing}})
async def list_files(request: Request, path: str = "") -> Response:
    """A folder's entries (folders first), or the one file ``path`` names."""
    share = _ws(request).files
    entries = await run_in_threadpool(share.list, _who(request), path)
    clean = share.resolve(path)[0]
    return json_response({"path": clean, "entries": [asdict(e) for e in entries]})


@router.get("/files/content")
async def download_file(request: Request, path: str) -> Response:
    clean, where = await run_in_threadpool(_ws(request).files.open_file, _who(request), path)
    name = clean.rsplit("/", 1)[-1]
    return FileResponse(where, filename=name, media_type="application/octet-stream",
                        headers={"X-Content-Type-Options": "nosniff"})  # fmt: skip


@router.put("/files/content", responses={200: {"model": api.FileEntry}})
async def upload_file(request: Request, path: str, overwrite: bool = True) -> Response:
    """The request body is the file's bytes, streamed to disk and renamed into place."""
    entry = await _ws(request).files.write(_who(request), path, request.stream(), overwrite)
    return json_response(asdict(entry))


@router.post("/files/folders", responses={200: {"model": api.FileEntry}})
async def make_folder(request: Request) -> Response:
    body = await json_object(request)
    entry = await run_in_threadpool(_ws(request).files.mkdir, _who(request), _text(body, "path"))
    return json_response(asdict(entry))


@router.post("/files/rename", responses={200: {"model": api.FileEntry}})
async def rename_file(request: Request) -> Response:
    body = await json_object(request)
    entry = await run_in_threadpool(
        _ws(request).files.rename, _who(request), _text(body, "path"), _text(body, "to")
    )
    return json_response(asdict(entry))


@router.delete("/files")
async def delete_file(request: Request, path: str) -> Response:
    await run_in_threadpool(_ws(request).files.delete, _who(request), path)
    return json_response({"deleted": path})
