"""Models: names, versions, files and the lineage chain (job → model → deployments).

Everything comes from :class:`lapis.registry.models.ModelService` in-process
(``list``, ``show`` with its ``lineage``, ``files``), so the pages show what
``lapis model list/show`` shows. Archived versions are hidden unless the
``archived`` query flag asks for them, as ``--include-archived`` does.

File downloads stream from the artifact store through a studio route (the
cookie authenticates it; the API's download path wants a bearer header a
browser link cannot send). Only paths the version's file listing names are
served — a version registered from one file of a run must not expose the
run's other artifacts — and always as an attachment with ``nosniff``, so an
uploaded HTML file cannot run as a page of this origin.
"""

from __future__ import annotations

import mimetypes
import posixpath
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from lapis.api.models import ModelFiles, ModelVersionOut
from lapis.artifacts.store import clean_relpath
from lapis.errors import LapisError, ResourceDoesNotExist
from lapis.server.studio.pages.lineage import layout
from lapis.server.studio.web import render

router = APIRouter(include_in_schema=False)


def summarize(versions: list[ModelVersionOut]) -> list[dict[str, Any]]:
    """One row per model name: its latest version, how many, type, tags, last update."""
    rows: dict[str, dict[str, Any]] = {}
    for v in versions:  # sorted by name, then version descending
        row = rows.get(v.name)
        if row is None:
            rows[v.name] = {
                "name": v.name,
                "latest": v,
                "count": 1,
                "updated_at": v.updated_at or v.created_at,
            }
            continue
        row["count"] += 1
        row["updated_at"] = max(row["updated_at"] or 0, v.updated_at or v.created_at or 0)
    return sorted(rows.values(), key=lambda r: str(r["name"]).lower())


@router.get("/models")
async def models_list(request: Request, archived: bool = False, q: str = "") -> Response:
    ws = request.app.state.ws
    versions = await run_in_threadpool(ws.models.list, None, archived)
    rows = summarize(versions)
    needle = q.strip().lower()
    if needle:
        rows = [r for r in rows if needle in str(r["name"]).lower()]
    ctx = {"rows": rows, "archived": archived, "q": q}
    return render(request, "models/list.html", ctx, section="models")


@router.get("/models/{name}")
async def model_page(request: Request, name: str, archived: bool = False) -> Response:
    ws = request.app.state.ws

    def gather() -> dict[str, Any]:
        model = ws.registry.get_registered_model(name)  # 404 when unknown
        versions = ws.models.list(model.name, archived)
        hidden = 0
        if not archived:
            hidden = len(ws.models.list(model.name, True)) - len(versions)
        return {"model": model, "versions": versions, "archived": archived, "hidden": hidden}

    return render(request, "models/model.html", await run_in_threadpool(gather), section="models")


@router.get("/models/{name}/versions/{version}")
async def version_page(request: Request, name: str, version: str) -> Response:
    ws = request.app.state.ws

    def gather() -> dict[str, Any]:
        mv = ws.models.show(name, version)
        files = ModelFiles(root="", files=[])
        files_error = None
        try:
            files = ws.models.files(mv.name, mv.version)
        except LapisError as exc:  # files outside this workspace's store: say so, keep the page
            files_error = exc.message
        return {
            "mv": mv,
            "lineage": mv.lineage,
            "graph": layout(mv),
            "files": files.files,
            "files_error": files_error,
        }

    ctx = await run_in_threadpool(gather)
    return render(request, "models/version.html", ctx, section="models")


@router.get("/models/{name}/versions/{version}/files/{path:path}")
async def download_file(request: Request, name: str, version: str, path: str) -> Response:
    ws = request.app.state.ws
    rel = clean_relpath(path)

    def locate() -> str:
        listing = ws.models.files(name, version)
        if rel not in {f.path for f in listing.files}:
            raise ResourceDoesNotExist(f"Model {name} version {version} has no file '{path}'")
        return f"{listing.root}/{rel}" if listing.root else rel

    full = await run_in_threadpool(locate)
    chunks = ws.artifacts.iter_read(full)
    base = posixpath.basename(rel) or "file"
    kind = mimetypes.guess_type(base)[0] or "application/octet-stream"
    headers = {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(base, safe='')}",
        "X-Content-Type-Options": "nosniff",
    }
    if kind.startswith("text/html") or "xml" in kind or "javascript" in kind:
        kind = "application/octet-stream"
    return StreamingResponse(chunks, media_type=kind, headers=headers)
