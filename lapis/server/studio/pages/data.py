"""Data: the workspace's datastores (data assets come next).

A datastore's page shows where its files are and which kind of credential it
holds — never the credential, which only ``listSecrets`` on the API returns.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.server.studio.web import render

router = APIRouter(include_in_schema=False)

CREDENTIALS = {
    "account_key": "account key",
    "sas_token": "SAS token",
    "service_principal": "service principal",
    "access_key": "access key",
    "none": "none (the server's identity)",
}


@router.get("/data")
async def data_page(request: Request) -> Response:
    stores = await run_in_threadpool(request.app.state.ws.datastores.list)
    ctx = {"stores": stores, "credentials": CREDENTIALS}
    return render(request, "data/list.html", ctx, section="data")


@router.get("/data/datastores/{name}")
async def datastore_page(request: Request, name: str) -> Response:
    store = await run_in_threadpool(request.app.state.ws.datastores.get, name)
    ctx = {"d": store, "credentials": CREDENTIALS}
    return render(request, "data/datastore.html", ctx, section="data")
