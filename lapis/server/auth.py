"""Bearer-token authentication as plain ASGI middleware.

Middleware rather than a FastAPI dependency so that no route — MLflow's,
ours, or one added later — can forget it. Only ``/healthz`` is open.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from lapis.errors import Unauthenticated

OPEN_PATHS = frozenset({"/healthz"})


class BearerAuth:
    def __init__(self, app: ASGIApp, workspace: Any) -> None:
        self.app = app
        self.ws = workspace

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        try:
            principal = self.ws.auth.authenticate(header)
        except Unauthenticated as exc:
            body = orjson.dumps(exc.to_json())
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"www-authenticate", b"Bearer"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
