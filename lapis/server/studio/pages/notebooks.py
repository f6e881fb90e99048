"""Notebooks: the workspace's file share in the studio — browse every user's folder, and
in one's own upload, make files and folders, rename, delete, and open a notebook in one
of one's running instances' JupyterLab (where it opens from the same share)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import FileResponse, Response

from lapis.entities.compute import ComputeState, ComputeType
from lapis.entities.files import USERS, user_folder_name
from lapis.errors import InvalidParameterValue
from lapis.notebooks.fileshare import MANAGE
from lapis.server.studio.web import render

router = APIRouter(include_in_schema=False)
EMPTY_NOTEBOOK = (
    b'{"cells": [], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",'
    b' "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}\n'
)


def _listing(request: Request, path: str) -> dict[str, Any]:
    ws = request.app.state.ws
    principal = request.state.principal
    own = f"{USERS}/{user_folder_name(principal.name)}"
    if not path:
        ws.files.user_root(principal.name)
        path = own
    entries = [asdict(e) for e in ws.files.list(principal, path)]
    clean = ws.files.resolve(path)[0]
    mine = clean == own or clean.startswith(own + "/")
    writable = mine or ws.auth.can(principal, MANAGE)
    crumbs, walked = [], []
    for part in clean.split("/") if clean else []:
        walked.append(part)
        crumbs.append({"name": part, "path": "/".join(walked)})
    labs = []
    if mine:  # one's own notebooks open in one's own instances' JupyterLab
        for c in ws.compute.list():
            if (
                c.type == ComputeType.INSTANCE.value
                and (c.user or "").lower() == principal.name.lower()
            ):
                labs.append({"name": c.name, "running": c.state == ComputeState.RUNNING.value})
    for e in entries:
        inside = e["path"][len(own) + 1 :] if mine else ""
        e["lab_path"] = quote(inside)
    return {"path": clean, "entries": entries, "crumbs": crumbs, "writable": writable,
            "mine": mine, "own": own, "labs": labs}  # fmt: skip


@router.get("/notebooks")
async def notebooks_page(request: Request, path: str = "") -> Response:
    ctx = await run_in_threadpool(_listing, request, path)
    return render(request, "notebooks/list.html", ctx, section="notebooks")


async def _fragment(request: Request, path: str) -> Response:
    ctx = await run_in_threadpool(_listing, request, path)
    return render(request, "notebooks/_files.html", ctx)


async def _read(upload: UploadFile) -> Any:
    while block := await upload.read(1024 * 1024):
        yield block


def _child(folder: str, name: str) -> str:
    name = name.strip()
    if not name or "/" in name or name in (".", ".."):
        raise InvalidParameterValue(f"'{name}' is not a file or folder name (one segment)")
    return f"{folder}/{name}"


@router.post("/notebooks/upload")
async def notebooks_upload(request: Request) -> Response:
    form = await request.form()
    folder = str(form.get("path") or "")
    uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
    for item in uploads:
        target = _child(folder, str(item.filename).rsplit("/", 1)[-1])
        await request.app.state.ws.files.write(request.state.principal, target, _read(item))
    return await _fragment(request, folder)


@router.post("/notebooks/new")
async def notebooks_new(request: Request) -> Response:
    """A new folder, file or (``.ipynb``) empty notebook in the folder shown."""
    form = await request.form()
    folder, kind = str(form.get("path") or ""), str(form.get("kind") or "file")
    target = _child(folder, str(form.get("name") or ""))
    files = request.app.state.ws.files
    principal = request.state.principal
    if kind == "folder":
        await run_in_threadpool(files.mkdir, principal, target)
    else:
        body = EMPTY_NOTEBOOK if target.endswith(".ipynb") else b""

        async def content() -> Any:
            yield body

        await files.write(principal, target, content(), overwrite=False)
    return await _fragment(request, folder)


@router.post("/notebooks/rename")
async def notebooks_rename(request: Request) -> Response:
    form = await request.form()
    path = str(form.get("path") or "")
    folder = path.rsplit("/", 1)[0]
    target = _child(folder, str(form.get("name") or ""))
    await run_in_threadpool(
        request.app.state.ws.files.rename, request.state.principal, path, target
    )
    return await _fragment(request, folder)


@router.post("/notebooks/delete")
async def notebooks_delete(request: Request) -> Response:
    form = await request.form()
    path = str(form.get("path") or "")
    await run_in_threadpool(request.app.state.ws.files.delete, request.state.principal, path)
    return await _fragment(request, path.rsplit("/", 1)[0])


@router.get("/notebooks/download")
async def notebooks_download(request: Request, path: str) -> Response:
    clean, where = await run_in_threadpool(
        request.app.state.ws.files.open_file, request.state.principal, path
    )
    return FileResponse(where, filename=clean.rsplit("/", 1)[-1],
                        media_type="application/octet-stream")  # fmt: skip
