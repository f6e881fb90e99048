"""Lapis' environments API under ``/api/v1``: register, list, show, build, build log.

``POST /environments`` takes either ``{"doc": {...}}`` (the parsed document),
``{"yaml": "...", "source": "env.yml"}`` (the file's text, so errors can name
lines) or the document itself; ``overrides`` replaces name, version or an
inlined ``conda_file``. A build runs in the threadpool and answers when it is
done: seconds for a cache hit, minutes for a large first build.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from lapis.api import environments as api
from lapis.errors import MalformedRequest
from lapis.server.body import json_object
from lapis.server.routers.mlflow._handler import json_response
from lapis.server.routers.v1_tracking import _ws

router = APIRouter(prefix="/api/v1", tags=["environments"])


async def _body(request: Request) -> dict[str, Any]:
    return await json_object(request)


@router.post("/environments", responses={200: {"model": api.EnvironmentOut}})
async def create_environment(request: Request) -> Response:
    """Register an environment version (the next integer when ``version`` is left out)."""
    body = await _body(request)
    source = str(body.pop("source", "<request>"))
    overrides = body.pop("overrides", None) or {}
    if not isinstance(overrides, dict):
        raise MalformedRequest("'overrides' must be an object")
    doc: dict[str, Any] | str
    if "yaml" in body:
        if not isinstance(body["yaml"], str):
            raise MalformedRequest("'yaml' must be the text of an environment file")
        doc = body["yaml"]
    elif "doc" in body:
        if not isinstance(body["doc"], dict):
            raise MalformedRequest("'doc' must be an object")
        doc = body["doc"]
    else:
        doc = body
    principal = getattr(request.state, "principal", None)
    env = await run_in_threadpool(
        _ws(request).environments.create,
        doc,
        source,
        principal.name if principal is not None else None,
        overrides,
    )
    return json_response(env)


@router.get("/environments", responses={200: {"model": api.EnvironmentList}})
async def list_environments(request: Request) -> Response:
    """The latest version of every environment, curated ones included."""
    envs = await run_in_threadpool(_ws(request).environments.list)
    return json_response({"environments": envs})


@router.get("/environments/{name}", responses={200: {"model": api.EnvironmentOut}})
async def get_environment(request: Request, name: str) -> Response:
    """The latest version of ``name``."""
    return json_response(await run_in_threadpool(_ws(request).environments.get, name))


@router.get("/environments/{name}/versions", responses={200: {"model": api.EnvironmentList}})
async def list_versions(request: Request, name: str) -> Response:
    envs = await run_in_threadpool(_ws(request).environments.versions, name)
    return json_response({"environments": envs})


@router.get(
    "/environments/{name}/versions/{version}", responses={200: {"model": api.EnvironmentOut}}
)
async def get_version(request: Request, name: str, version: str) -> Response:
    """One version; ``latest`` means the highest number."""
    return json_response(await run_in_threadpool(_ws(request).environments.get, name, version))


@router.post(
    "/environments/{name}/versions/{version}/build",
    responses={200: {"model": api.BuildResult}},
)
async def build_version(request: Request, name: str, version: str) -> Response:
    """Build now, answer when done; a failure is 400 ENVIRONMENT_BUILD_FAILED with the log tail."""
    return json_response(await run_in_threadpool(_ws(request).environments.build, name, version))


@router.post("/environments/{name}/versions/{version}/kernel")
async def register_kernel(request: Request, name: str, version: str) -> Response:
    """Build the version and offer its Python as a kernel in every instance's JupyterLab."""
    from lapis.notebooks.kernels import register_kernel as register

    body = await json_object(request) if await request.body() else {}
    shown = body.get("display_name")
    ws = _ws(request)
    made = await run_in_threadpool(register, ws.environments, ws.settings.home, name, version,
                                   str(shown) if shown else None)  # fmt: skip
    return json_response(made)


@router.post(
    "/environments/{name}/versions/{version}/archive",
    responses={200: {"model": api.EnvironmentOut}},
)
async def archive_version(request: Request, name: str, version: str) -> Response:
    """Hide a version from listings and ``@latest`` (jobs naming it exactly still work)."""
    return json_response(await run_in_threadpool(_ws(request).environments.archive, name, version))


@router.get("/environments/{name}/versions/{version}/build-log", response_class=PlainTextResponse)
async def build_log(request: Request, name: str, version: str) -> Response:
    """The uv output of the last build of this version's content, as text."""
    text = await run_in_threadpool(_ws(request).environments.build_log, name, version)
    return PlainTextResponse(text)
