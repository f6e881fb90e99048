"""Environments: registered and curated ones, each version's spec, build status and log.

A build is keyed by the version's content hash, so two versions (or a job's
inline environment) with the same packages share one build and one status.
The Build button starts ``EnvironmentService.build`` in a background thread —
a first build can take minutes — and the status block polls every 2 s while
it says Building; the service records the outcome (Succeeded or Failed with a
reason) itself, so nothing here has to wait for it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.api.environments import EnvironmentOut
from lapis.errors import LapisError, ResourceDoesNotExist
from lapis.server.studio.web import render

router = APIRouter(include_in_schema=False)
log = logging.getLogger("lapis.studio")

_building: set[str] = set()  # digests this server is building from the studio now
_lock = threading.Lock()


def build_state(env: EnvironmentOut) -> dict[str, Any]:
    """Built / building / failed / not built (or nothing to build), for people."""
    if not env.digest:
        return {"label": "No build needed", "tone": "ok", "error": None, "building": False}
    status = env.build.status if env.build else None
    building = status == "Building" or env.digest in _building
    if building:
        return {"label": "Building", "tone": "run", "error": None, "building": True}
    if status == "Succeeded":
        return {"label": "Built", "tone": "ok", "error": None, "building": False}
    if status == "Failed":
        error = env.build.error if env.build else None
        return {"label": "Failed", "tone": "bad", "error": error, "building": False}
    return {"label": "Not built", "tone": "off", "error": None, "building": False}


@router.get("/environments")
async def environments_list(request: Request) -> Response:
    ws = request.app.state.ws

    def gather() -> dict[str, Any]:
        envs = ws.environments.list()
        return {"rows": [{"e": e, "build": build_state(e)} for e in envs]}

    ctx = await run_in_threadpool(gather)
    return render(request, "environments/list.html", ctx, section="environments")


def _version_ctx(ws: Any, name: str, version: str | None) -> dict[str, Any]:
    env = ws.environments.get(name, version)
    return {"env": env, "build": build_state(env)}


@router.get("/environments/{name}")
async def environment_page(request: Request, name: str, version: str | None = None) -> Response:
    ws = request.app.state.ws

    def gather() -> dict[str, Any]:
        versions = ws.environments.versions(name)
        ctx = _version_ctx(ws, name, version or versions[0].version)
        ctx["versions"] = [{"e": v, "build": build_state(v)} for v in versions]
        return ctx

    ctx = await run_in_threadpool(gather)
    return render(request, "environments/detail.html", ctx, section="environments")


@router.get("/environments/{name}/versions/{version}/build-status")
async def build_status(request: Request, name: str, version: str) -> Response:
    ctx = await run_in_threadpool(_version_ctx, request.app.state.ws, name, version)
    return render(request, "environments/_build.html", ctx)


@router.get("/environments/{name}/versions/{version}/log")
async def build_log(request: Request, name: str, version: str) -> Response:
    """The build log as a fragment; a version never built says so in words."""
    ws = request.app.state.ws
    try:
        text = await run_in_threadpool(ws.environments.build_log, name, version)
        ctx: dict[str, Any] = {"text": text, "missing": None}
    except ResourceDoesNotExist as exc:
        ctx = {"text": None, "missing": exc.message}
    return render(request, "environments/_log.html", ctx)


def _build_in_background(ws: Any, name: str, version: str, digest: str) -> None:
    try:
        ws.environments.build(name, version)
    except LapisError as exc:  # recorded as Failed (with its reason) by the service
        log.info("studio build of %s:%s failed: %s", name, version, exc.message)
    except Exception:
        log.exception("studio build of %s:%s crashed", name, version)
    finally:
        with _lock:
            _building.discard(digest)


@router.post("/environments/{name}/versions/{version}/build")
async def build(request: Request, name: str, version: str) -> Response:
    """Start building this version (if it is not built or building) and show its status."""
    ws = request.app.state.ws
    ctx = await run_in_threadpool(_version_ctx, ws, name, version)
    env: EnvironmentOut = ctx["env"]
    digest = env.digest
    if digest and ctx["build"]["label"] in ("Not built", "Failed"):
        with _lock:
            start = digest not in _building
            _building.add(digest)
        if start:
            threading.Thread(
                target=_build_in_background,
                args=(ws, env.name, env.version, digest),
                name=f"studio-build-{digest[:8]}",
                daemon=True,
            ).start()
        ctx["build"] = build_state(env)
    return render(request, "environments/_build.html", ctx)
