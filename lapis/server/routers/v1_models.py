"""Lapis' models API under ``/api/v1/models``: register, list, show, update, archive, files.

A local folder is registered in three steps so that no file sits in the
server's memory: ``POST /models`` with ``upload: true`` makes a pending
version, ``PUT …/files/{path}`` streams each file into the store, and
``POST …/ready`` marks the version registered.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.api import models as api
from lapis.errors import MalformedRequest
from lapis.registry.models import ModelService
from lapis.server.body import json_object
from lapis.server.routers.mlflow._handler import json_response

router = APIRouter(prefix="/api/v1", tags=["models"])


def _models(request: Request) -> ModelService:
    models: ModelService = request.app.state.ws.models
    return models


async def _json(request: Request) -> dict[str, Any]:
    return await json_object(request)


@router.post("/models", status_code=201, responses={201: {"model": api.ModelDetail}})
async def create_model(request: Request) -> Response:
    """Register a version: the model YAML's fields (``path`` a job output or ``runs:/``)."""
    body = await _json(request)
    principal = getattr(request.state, "principal", None)
    result = await run_in_threadpool(_models(request).create, body, principal)
    return json_response(result, status=201)


@router.get("/models", responses={200: {"model": api.ModelList}})
async def list_models(
    request: Request, name: str | None = None, include_archived: bool = False
) -> Response:
    found = await run_in_threadpool(_models(request).list, name, include_archived)
    return json_response({"models": found})


@router.get("/models/{name}/versions/{version}", responses={200: {"model": api.ModelDetail}})
async def show_model(request: Request, name: str, version: str) -> Response:
    """``version`` is a number, or ``latest`` / an alias (the ``--label`` form)."""
    models = _models(request)
    if version.isdigit():
        result = await run_in_threadpool(models.show, name, version)
    else:
        result = await run_in_threadpool(models.show, name, None, version)
    return json_response(result)


@router.patch("/models/{name}/versions/{version}", responses={200: {"model": api.ModelDetail}})
async def update_model(request: Request, name: str, version: str) -> Response:
    body = await _json(request)
    tags = body.get("tags") or {}
    if not isinstance(tags, dict):
        raise MalformedRequest("'tags' must be an object")
    result = await run_in_threadpool(
        _models(request).update, name, version, body.get("description"), tags
    )
    return json_response(result)


@router.post(
    "/models/{name}/versions/{version}/archive", responses={200: {"model": api.ModelDetail}}
)
async def archive_model(request: Request, name: str, version: str) -> Response:
    return json_response(
        await run_in_threadpool(_models(request).set_archived, name, version, True)
    )


@router.post(
    "/models/{name}/versions/{version}/restore", responses={200: {"model": api.ModelDetail}}
)
async def restore_model(request: Request, name: str, version: str) -> Response:
    return json_response(
        await run_in_threadpool(_models(request).set_archived, name, version, False)
    )


@router.delete("/models/{name}/versions/{version}")
async def delete_model(request: Request, name: str, version: str) -> Response:
    await run_in_threadpool(_models(request).delete, name, version)
    return json_response({})


@router.put(
    "/models/{name}/versions/{version}/files/{path:path}",
    responses={200: {"model": api.UploadedFile}},
)
async def upload_file(request: Request, name: str, version: str, path: str) -> Response:
    models = _models(request)
    target = await run_in_threadpool(models.upload_target, name, version, path)
    written = await models.artifacts.write_stream(target, request.stream())
    return json_response({"path": path, "size": written})


@router.post("/models/{name}/versions/{version}/ready", responses={200: {"model": api.ModelDetail}})
async def finish_upload(request: Request, name: str, version: str) -> Response:
    return json_response(await run_in_threadpool(_models(request).finish_upload, name, version))


@router.get("/models/{name}/versions/{version}/files", responses={200: {"model": api.ModelFiles}})
async def list_files(request: Request, name: str, version: str) -> Response:
    """The store folder of the version's files (download each from mlflow-artifacts)."""
    return json_response(await run_in_threadpool(_models(request).files, name, version))


@router.get("/webhooks/{webhook_id}/deliveries", responses={200: {"model": api.WebhookDeliveries}})
async def webhook_deliveries(request: Request, webhook_id: str, limit: int = 50) -> Response:
    """A registry webhook's latest deliveries: state, tries, the receiver's last answer."""
    if not 1 <= limit <= 1000:
        raise MalformedRequest(f"limit must be from 1 to 1000, got {limit}")
    ws = request.app.state.ws
    found = await run_in_threadpool(ws.webhooks.deliveries, webhook_id, limit)
    return json_response(
        api.WebhookDeliveries(
            webhook_id=webhook_id,
            deliveries=[
                api.WebhookDelivery(
                    delivery_id=d.delivery_id,
                    event=d.event,
                    state=d.state,
                    attempts=d.attempts,
                    next_attempt_at=d.next_attempt_at if d.state == "pending" else None,
                    last_status=d.last_status,
                    last_error=d.last_error,
                    created_at=d.created_at,
                    updated_at=d.updated_at,
                )
                for d in found
            ],
        )
    )
