"""Lapis' online-endpoint API under ``/api/v1/endpoints`` (deployments: v1_deployments.py).

Bodies are the endpoint document as Azure's YAML has it (a JSON object), with
an optional ``"source"`` naming the file it came from so that messages can
point at it. Key routes follow Azure's REST names: ``listKeys`` returns
``{"primaryKey", "secondaryKey"}`` and ``regenerateKeys`` takes
``{"keyType": "Primary" | "Secondary"}``. ``scoring_uri`` is built from the
URL the caller reached this server at.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.api import endpoints as api
from lapis.errors import MalformedRequest
from lapis.server.body import json_object
from lapis.server.context import Workspace
from lapis.server.routers.mlflow._handler import json_response

router = APIRouter(prefix="/api/v1", tags=["endpoints"])


def _ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


def _who(request: Request) -> str | None:
    principal = getattr(request.state, "principal", None)
    return principal.name if principal is not None else None


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _body(request: Request) -> tuple[dict[str, Any], str]:
    data = await json_object(request)
    source = data.pop("source", None)
    return data, str(source) if source else "<request>"


@router.post("/endpoints", status_code=201, responses={201: {"model": api.EndpointOut}})
async def create_endpoint(request: Request) -> Response:
    """Create an online endpoint; its two keys are generated here."""
    ws = _ws(request)
    doc, source = await _body(request)

    def work() -> api.EndpointOut:
        e = ws.endpoints.create(doc, source=source, created_by=_who(request))
        return ws.endpoints.describe(e, _base(request))

    return json_response(await run_in_threadpool(work), status=201)


@router.get("/endpoints", responses={200: {"model": api.EndpointList}})
async def list_endpoints(request: Request) -> Response:
    ws = _ws(request)

    def work() -> api.EndpointList:
        base = _base(request)
        return api.EndpointList(
            endpoints=[ws.endpoints.describe(e, base) for e in ws.endpoints.list()]
        )

    return json_response(await run_in_threadpool(work))


@router.get("/endpoints/{name}", responses={200: {"model": api.EndpointDetail}})
async def get_endpoint(request: Request, name: str) -> Response:
    ws = _ws(request)

    detail = await run_in_threadpool(ws.deployments.endpoint_detail, name, _base(request))
    return json_response(detail)


@router.patch("/endpoints/{name}", responses={200: {"model": api.EndpointOut}})
async def update_endpoint(request: Request, name: str) -> Response:
    """Change description, tags, auth mode, traffic or mirror traffic."""
    ws = _ws(request)
    doc, source = await _body(request)

    def work() -> api.EndpointOut:
        e = ws.endpoints.update(name, doc, source=source)
        return ws.endpoints.describe(e, _base(request))

    return json_response(await run_in_threadpool(work))


@router.delete("/endpoints/{name}", responses={200: {"model": api.Deleted}})
async def delete_endpoint(request: Request, name: str) -> Response:
    ws = _ws(request)
    e = await run_in_threadpool(ws.endpoints.delete, name)
    if ws.telemetry is not None:  # a new endpoint of the same name starts from zero
        ws.telemetry.forget(e.name)
    return json_response(api.Deleted(name=e.name, deleted=True))


@router.post(
    "/endpoints/{name}/listKeys",
    responses={200: {"model": api.EndpointKeys | api.EndpointToken}},
)
async def list_keys(request: Request, name: str) -> Response:
    """The endpoint's keys, as Azure's get-credentials returns them; for an ``aml_token``
    endpoint a fresh token instead (``accessToken``, ``expiryTimeUtc``…)."""
    ws = _ws(request)
    return json_response(await run_in_threadpool(ws.endpoints.get_credentials, name))


@router.post("/endpoints/{name}/token", responses={200: {"model": api.EndpointToken}})
async def get_token(request: Request, name: str) -> Response:
    """A scoring token of an ``aml_token`` endpoint, valid for an hour (Azure's token call)."""
    ws = _ws(request)
    return json_response(await run_in_threadpool(ws.endpoints.get_token, name))


@router.post("/endpoints/{name}/regenerateKeys", responses={200: {"model": api.KeyRegenerated}})
async def regenerate_keys(request: Request, name: str) -> Response:
    """Replace one key (``keyType``: Primary or Secondary); the other keeps working."""
    ws = _ws(request)
    doc, _ = await _body(request)
    key_type = doc.get("keyType")
    if not isinstance(key_type, str):
        raise MalformedRequest('regenerateKeys needs {"keyType": "Primary" | "Secondary"}')
    await run_in_threadpool(ws.endpoints.regenerate_key, name, key_type)
    return json_response(
        api.KeyRegenerated(name=name, keyType=key_type.capitalize(), regenerated=True)
    )
