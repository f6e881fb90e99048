"""``create_app``: the FastAPI application for one workspace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from lapis.endpoints.data.proxy import ScoringProxy
from lapis.server import errors, studio
from lapis.server.audit import AuditTrail
from lapis.server.auth import BearerAuth
from lapis.server.authorize import authorize_route
from lapis.server.context import Workspace
from lapis.server.fastlane import FastLane
from lapis.server.guard import RequestGuard
from lapis.server.headers import SecurityHeaders
from lapis.server.lab_proxy import LabProxy
from lapis.server.routers import (
    v1_access,
    v1_batch,
    v1_components,
    v1_compute,
    v1_data,
    v1_deployments,
    v1_endpoints,
    v1_environments,
    v1_files,
    v1_jobs,
    v1_models,
    v1_schedules,
    v1_serving,
    v1_tracking,
)
from lapis.server.routers.mlflow import (
    artifacts,
    experiments,
    logged_models,
    registry,
    runs,
    traces,
    webhooks,
)
from lapis.server.routers.mlflow._handler import MLFLOW_V3_PREFIXES, json_response, mount
from lapis.version import __version__

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error_code", "message"],
    "properties": {
        "error_code": {"type": "string"},
        "message": {"type": "string"},
        "details": {"type": "object"},
    },
}


def document_errors(app: FastAPI) -> None:
    """Every operation documents its errors: any 4xx, 503 and 507, all as ``Error``.

    The answers come from one exception handler (lapis/server/errors.py), so one
    schema describes them all; a fuzzer can then check error bodies, not only codes.
    """
    inner = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = inner()
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for item in schema.get("paths", {}).values():
            for method, op in item.items():
                if not isinstance(op, dict) or "responses" not in op:
                    continue
                if method == "head":  # answers to HEAD carry no body, errors included
                    for answer in op["responses"].values():
                        answer.pop("content", None)
                    op["responses"].setdefault("4XX", {"description": "The request was refused"})
                    continue
                op["responses"].pop("422", None)  # validation errors are answered 400
                op["responses"].setdefault("4XX", {"description": "The request was refused"} | ref)
                for code, what in (("503", "Temporarily unavailable"), ("507", "Disk full")):
                    op["responses"].setdefault(code, {"description": what} | ref)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


@dataclass(frozen=True)
class Background:
    """The work the app runs beside the API (``Workspace.start``): where it is served."""

    url: str  # jobs and deployment instances call back here
    ca_bundle: str | None = None  # for a self-signed certificate (lapis/server/tls.py)


class LapisApp(FastAPI):
    """FastAPI with the fast lane (lapis/server/fastlane.py) in front of its whole stack."""

    lane: ASGIApp | None = None

    async def stack(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.lane is None:
            await super().__call__(scope, receive, send)
        else:
            await self.lane(scope, receive, send)


def create_app(ws: Workspace, background: Background | None = None) -> FastAPI:
    """The app for one workspace; with ``background``, its lifespan runs the server's life.

    Startup begins the audit writer, the job scheduler (which first reconciles the
    jobs a previous server left) and the deployment instances; shutdown ends them.
    Without ``background`` the app only answers requests (route listings, tests of
    one layer).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if background is not None:
            await run_in_threadpool(ws.start, background.url, background.ca_bundle)
        try:
            yield
        finally:
            if background is not None:
                await run_in_threadpool(ws.stop)

    app = LapisApp(
        lifespan=lifespan,
        title="Lapis",
        version=__version__,
        description="Self-hosted ML workspace: Lapis' own API under /api/v1 and MLflow's "
        "tracking protocol under /api/2.0/mlflow.",
        # every route's declared action is checked after routing (lapis/server/permissions.py)
        dependencies=[Depends(authorize_route)],
    )
    app.state.ws = ws
    errors.install(app)

    @app.get("/healthz", tags=["server"])
    async def healthz() -> Response:
        """Liveness; the only route that needs no token."""
        return json_response({"status": "ok", "version": __version__})

    @app.get("/api/3.0/mlflow/server-info", tags=["mlflow"])
    async def server_info() -> Response:
        """What the mlflow client probes before choosing an artifact upload strategy."""
        return json_response(
            {
                "store_type": "SqlStore",
                "workspaces_enabled": False,
                "multipart_uploads_enabled": False,
                "multipart_downloads_enabled": False,
            }
        )

    app.include_router(v1_access.router)
    app.include_router(v1_tracking.router)
    app.include_router(v1_jobs.router)
    app.include_router(v1_compute.router)
    app.include_router(v1_environments.router)
    app.include_router(v1_data.router)
    app.include_router(v1_components.router)
    app.include_router(v1_files.router)
    app.include_router(v1_schedules.router)
    app.include_router(v1_models.router)
    app.include_router(v1_endpoints.router)
    app.include_router(v1_batch.router)
    app.include_router(v1_deployments.router)
    app.include_router(v1_serving.router)
    app.include_router(artifacts.router)
    dispatcher = mount(
        app,
        runs.ROUTES
        + experiments.ROUTES
        + logged_models.ROUTES
        + registry.ROUTES
        + traces.ROUTES
        + webhooks.ROUTES,
    )
    mount(app, traces.V3_ROUTES, MLFLOW_V3_PREFIXES)
    studio.install(app)  # the web UI at /; after errors.install, whose handlers it wraps
    document_errors(app)
    app.add_middleware(BearerAuth, workspace=ws)
    app.add_middleware(AuditTrail, writer=ws.audit)  # sees the principal BearerAuth found
    app.add_middleware(LabProxy, workspace=ws)  # instances' JupyterLab: its own auth, WebSockets
    app.add_middleware(ScoringProxy, workspace=ws)  # scoring needs no user token
    app.add_middleware(RequestGuard, max_body=ws.settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)  # outermost: every answer gets them
    # In front of it all (FastAPI's own middlewares included): the hot tracking writes,
    # answered with the same checks and records as the stack gives them.
    app.lane = FastLane(
        app.stack,
        workspace=ws,
        dispatcher=dispatcher,
        audit=ws.audit,
        max_body=ws.settings.max_body_bytes,
    )
    return app
