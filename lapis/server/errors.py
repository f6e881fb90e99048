"""Exception handlers: every error leaves as ``{"error_code", "message"}`` JSON."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from lapis.errors import LapisError

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
                "details": {"errors": [{"loc": e.get("loc"), "msg": e.get("msg")} for e in exc.errors()]},
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
        return JSONResponse({"error_code": code, "message": message}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"error_code": "INTERNAL_ERROR", "message": f"Internal error: {type(exc).__name__}"},
            status_code=500,
        )
