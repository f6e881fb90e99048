"""Data: the workspace's datastores (data assets are listed next to them).

A datastore's page shows where its files are and which kind of credential it
holds — never the credential, which only ``listSecrets`` on the API returns.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.errors import LapisError
from lapis.server.studio.web import render

router = APIRouter(include_in_schema=False)

USE = "workspaces/datastores/listsecrets/action"  # reading files uses the credential
CREDENTIALS = {
    "account_key": "account key",
    "sas_token": "SAS token",
    "service_principal": "service principal",
    "access_key": "access key",
    "none": "none (the server's identity)",
}


@router.get("/data")
async def data_page(request: Request) -> Response:
    ws = request.app.state.ws
    stores = await run_in_threadpool(ws.datastores.list)
    principal = getattr(request.state, "principal", None)
    assets = None
    if principal is not None and ws.auth.can(principal, "workspaces/data/read"):
        assets = await run_in_threadpool(ws.data.list)
    ctx = {"stores": stores, "assets": assets, "credentials": CREDENTIALS}
    return render(request, "data/list.html", ctx, section="data")


@router.get("/data/assets/{name}")
async def data_asset_page(request: Request, name: str) -> Response:
    """Every version of a data asset, newest first, with where each one's data is."""
    ws = request.app.state.ws
    versions = await run_in_threadpool(ws.data.versions, name)
    readers = await run_in_threadpool(ws.jobs.reading_asset, name)
    return render(
        request, "data/asset.html", {"versions": versions, "readers": readers}, section="data"
    )


@router.get("/data/assets/{name}/preview")
async def data_asset_preview(request: Request, name: str, version: str = "latest") -> Response:
    """The first rows and columns of a tabular asset, as a fragment (read from its
    datastore, so a slow store never holds up the page); a refusal is shown in place."""
    from lapis.data.reading import AssetFiles

    ws = request.app.state.ws
    principal = getattr(request.state, "principal", None)
    found, problem = None, None
    try:
        found = await run_in_threadpool(AssetFiles(ws.jobs.data).preview, name, version, principal)
    except LapisError as exc:
        problem = exc.message
    return render(request, "data/_preview.html", {"p": found, "problem": problem})


@router.get("/data/datastores/{name}")
async def datastore_page(request: Request, name: str, path: str = "") -> Response:
    """The datastore's settings; its files come in a fragment (a slow or unreachable
    storage service never holds up the page)."""
    store = await run_in_threadpool(request.app.state.ws.datastores.get, name)
    ctx = {"d": store, "credentials": CREDENTIALS, "folder": path.strip("/")}
    return render(request, "data/datastore.html", ctx, section="data")


@router.get("/data/datastores/{name}/files")
async def datastore_files(request: Request, name: str, path: str = "") -> Response:
    """One folder, for those whose role may use the datastore's credential (``?path=``);
    what the storage service says when it refuses is shown in its place."""
    ws = request.app.state.ws
    principal = getattr(request.state, "principal", None)
    files: list[dict[str, object]] | None = None
    problem = None
    if principal is not None and ws.auth.can(principal, USE):
        try:
            files = await run_in_threadpool(ws.datastores.browse, name, path)
        except LapisError as exc:
            problem = exc.message
    folder = path.strip("/")
    ctx = {"name": name, "files": files, "problem": problem, "folder": folder,
           "up": folder.rpartition("/")[0] if folder else None}  # fmt: skip
    return render(request, "data/_files.html", ctx)
