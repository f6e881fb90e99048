"""Lapis' data API under ``/api/v1``: datastores.

``POST /datastores`` takes ``{"yaml": "...", "source": "ds.yml"}`` (the file's
text, so errors name lines) or the document itself; it creates the datastore or
replaces the settings of the one with that name, as ``az ml datastore create``
does. No answer ever carries a credential except ``listSecrets``, whose action
(``workspaces/datastores/listsecrets/action``) the Reader role does not have.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.api import data as api
from lapis.errors import MalformedRequest
from lapis.server.body import json_object
from lapis.server.routers.mlflow._handler import json_response
from lapis.server.routers.v1_tracking import _ws

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
        from lapis.specs.yaml_lines import load

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
