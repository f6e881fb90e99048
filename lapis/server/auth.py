"""Authentication as plain ASGI middleware: bearer tokens for the API, a cookie for the studio.

Middleware rather than a FastAPI dependency so that no route — MLflow's,
ours, the studio's, or one added later — can forget it. Open without a token:
``/healthz``, the sign-in page and the studio's static files.

- API paths (``/api``, ``/ajax-api``, ``/metrics``…) need
  ``Authorization: Bearer <token>`` and answer 401 JSON without it; the
  studio's cookie is *not* accepted there, so a cross-site page cannot reach
  the API with a signed-in user's cookie.
- Studio paths accept the same header or the ``lapis_token`` cookie set at
  sign-in. Without a valid one a page request is redirected to the sign-in
  page (an htmx request gets 401 with ``HX-Redirect`` so the whole page goes
  there), and a cookie-authenticated POST must carry the CSRF header
  (:mod:`lapis.server.studio.session`).
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from lapis.errors import Unauthenticated
from lapis.server.studio import session, web

OPEN_PATHS = frozenset({"/healthz"})


def _cookies(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header is treated as no cookies
        return {}
    return {k: m.value for k, m in jar.items()}


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BearerAuth:
    def __init__(self, app: ASGIApp, workspace: Any) -> None:
        self.app = app
        self.ws = workspace

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in OPEN_PATHS or web.is_open_path(path):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        header = headers.get(b"authorization")
        authorization = header.decode("latin-1") if header is not None else None
        studio = not web.is_api_path(path)
        by_cookie = False
        cookies: dict[str, str] = {}
        if studio:
            cookies = _cookies(headers.get(b"cookie", b"").decode("latin-1"))
            if authorization is None and cookies.get(session.TOKEN_COOKIE):
                authorization = f"Bearer {cookies[session.TOKEN_COOKIE]}"
                by_cookie = True
        try:
            principal = self.ws.auth.authenticate(authorization)
        except Unauthenticated as exc:
            if studio:
                await self._to_signin(scope, send, headers)
                return
            await _send(
                send,
                401,
                orjson.dumps(exc.to_json()),
                [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
            )
            return
        if by_cookie:
            sent = headers.get(session.CSRF_HEADER.encode())
            if not session.csrf_ok(
                scope["method"], cookies, sent.decode("latin-1") if sent else None
            ):
                body = b"The request lacks the studio's CSRF token; reload the page and retry."
                await _send(send, 403, body, [(b"content-type", b"text/plain; charset=utf-8")])
                return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    @staticmethod
    async def _to_signin(scope: Scope, send: Send, headers: dict[bytes, bytes]) -> None:
        path = scope.get("path", "/")
        query = scope.get("query_string", b"").decode("latin-1")
        target = path + (f"?{query}" if query else "")
        location = f"/signin?next={quote(target, safe='')}".encode()
        if headers.get(b"hx-request") == b"true":  # htmx: move the whole page to sign-in
            await _send(send, 401, b"", [(b"hx-redirect", location)])
            return
        await _send(send, 303, b"", [(b"location", location)])
