"""The first checks every request meets, before authentication and routing.

- **NUL in the path or query** (``/api/v1/jobs/%00``): refused with 400, since
  PostgreSQL cannot compare text holding NUL and would answer with a 500.
- **Body size**: a request whose ``Content-Length`` is over the limit is answered
  413 before a byte of it is read; a chunked one is counted as it arrives and cut
  off at the limit. Streamed uploads (artifacts, code snapshots, model files) are
  exempt: they never sit in memory, and have limits of their own.
"""

from __future__ import annotations

import re

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY = 32 * 1024 * 1024
# Routes that stream their body to disk (PUT only).
STREAMED = re.compile(
    r"^(/api/2\.0/mlflow-artifacts/artifacts/|/ajax-api/2\.0/mlflow-artifacts/artifacts/"
    r"|/api/v1/snapshots/|/api/v1/models/[^/]+/versions/[^/]+/files/"
    r"|/api/v1/data/uploads/[^/]+/files/|/api/v1/files/content$)"
)


class BodyTooLarge(Exception):
    pass


async def _answer(send: Send, status: int, code: str, message: str) -> None:
    body = orjson.dumps({"error_code": code, "message": message})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    def __init__(self, app: ASGIApp, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        query: bytes = scope.get("query_string", b"")
        if "\x00" in path or b"%00" in query or b"\x00" in query:
            await _answer(
                send, 400, "INVALID_PARAMETER_VALUE", "The URL contains a NUL character (%00)"
            )
            return
        if scope["method"] == "PUT" and STREAMED.match(path):
            await self.app(scope, receive, send)
            return
        limit = self.max_body
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _answer(send, 413, "REQUEST_TOO_LARGE", self._message(declared))
                    return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if not started:
                await _answer(send, 413, "REQUEST_TOO_LARGE", self._message(received))

    def _message(self, size: int) -> str:
        return (
            f"The request body is {size:,} bytes or more; the limit is {self.max_body:,} bytes "
            "(LAPIS_MAX_BODY_MB); upload large files through the artifact routes"
        )
