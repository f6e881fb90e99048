"""Exception handlers: every error leaves as ``{"error_code", "message"}`` JSON."""

from __future__ import annotations

import html
import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lapis.errors import InsufficientStorage, InvalidParameterValue, LapisError
from lapis.server.guard import BodyTooLarge
from lapis.util import DISK_FULL

log = logging.getLogger("lapis.server")


def install(app: FastAPI) -> None:
    @app.exception_handler(LapisError)
    async def lapis_error(_: Request, exc: LapisError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        return JSONResponse(exc.to_json(), status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return JSONResponse(
            {
                "error_code": "INVALID_PARAMETER_VALUE",
                "message": "Invalid request: " + "; ".join(problems),
                "details": {
                    "errors": [{"loc": e.get("loc"), "msg": e.get("msg")} for e in exc.errors()]
                },
            },
            status_code=400,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "ENDPOINT_NOT_FOUND", 405: "BAD_REQUEST"}.get(exc.status_code, "BAD_REQUEST")
        message = (
            f"No endpoint {request.method} {request.url.path}"
            if exc.status_code in (404, 405)
            else str(exc.detail)
        )
        if exc.status_code == 405 and exc.headers and exc.headers.get("Allow"):
            message += f"; allowed: {exc.headers['Allow']}"
        return JSONResponse(
            {"error_code": code, "message": message},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),  # a 405 keeps its Allow header
        )

    app.add_middleware(CatchAll)


def _known(exc: Exception) -> tuple[int, LapisError] | None:
    """Failures that are the request's or the machine's, not a bug: a full disk (507)
    and a value the database refuses to store (400), found wherever they surface."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL:
        return 507, InsufficientStorage(
            "The server's disk is full (no space left on device); nothing was half-written. "
            "Free space under the workspace home or the artifact store and retry."
        )
    from sqlalchemy.exc import DataError, OperationalError

    if isinstance(exc, DataError):
        reason = str(exc.orig or exc).strip().splitlines()[0]
        return 400, InvalidParameterValue(f"A value cannot be stored: {reason}")
    if isinstance(exc, OperationalError) and "disk" in str(exc.orig or "").lower():
        return 507, InsufficientStorage(
            f"The database cannot write: {str(exc.orig).strip().splitlines()[0]}"
        )
    return None


def _known_logged(exc: Exception, scope: Scope) -> tuple[int, LapisError] | None:
    """:func:`_known`, with the one warning line such a failure gets in the server log."""
    known = _known(exc)
    if known is not None:
        error = known[1]
        method, path = scope.get("method"), scope.get("path")
        log.warning("%s on %s %s: %s", error.error_code, method, path, error.message)
    return known


def error_answer(exc: Exception, scope: Scope) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """Status, JSON body and extra headers for ``exc`` raised by an API handler: what the
    exception handlers above and :class:`CatchAll` answer, for code that answers on its
    own (the fast lane, lapis/server/fastlane.py)."""
    if isinstance(exc, LapisError):
        extra = [(b"www-authenticate", b"Bearer")] if exc.http_status == 401 else []
        return exc.http_status, orjson.dumps(exc.to_json()), extra
    known = _known_logged(exc, scope)
    if known is not None:
        status, error = known
        return status, orjson.dumps(error.to_json()), []
    log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
    return 500, orjson.dumps(_internal(exc)), []


def _internal(exc: Exception) -> dict[str, str]:
    return {"error_code": "INTERNAL_ERROR", "message": f"Internal error: {type(exc).__name__}"}


class CatchAll:
    """Turn an unexpected exception into a JSON 500 and one log record.

    Starlette's own last-resort handler re-raises after answering, so the same
    traceback would be logged twice; this sits inside it and stops there.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except BodyTooLarge:
            raise  # the request guard outside answers 413
        except Exception as exc:
            known = None if started else _known_logged(exc, scope)
            if known is not None:
                status, error = known
                await JSONResponse(error.to_json(), status_code=status)(scope, receive, send)
                return
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            from lapis.server.studio.web import is_api_path

            response: Response
            if is_api_path(scope.get("path", "")):
                response = JSONResponse(_internal(exc), status_code=500)
            else:  # a studio page: a readable page, never a traceback
                response = HTMLResponse(
                    "<!doctype html><title>Error</title><h1>Something went wrong</h1>"
                    f"<p>Internal error: {html.escape(type(exc).__name__)}; the server log has "
                    'the details.</p><p><a href="/">Back to the home page</a></p>',
                    status_code=500,
                )
            await response(scope, receive, send)
