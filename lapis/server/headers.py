"""Security headers on every response.

- ``X-Content-Type-Options: nosniff`` everywhere: a downloaded artifact is never
  run as script or styles because a browser guessed its type.
- Studio pages (not the API, not scoring) cannot be framed by another site
  (``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``: no
  click-jacking of the Delete buttons) and send no referrer off the site.
- Over HTTPS, ``Strict-Transport-Security`` tells browsers to keep using HTTPS.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lapis.server.studio.web import is_api_path

HSTS = (b"strict-transport-security", b"max-age=31536000")
ALWAYS = [(b"x-content-type-options", b"nosniff")]
STUDIO = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(ALWAYS)
        path = scope.get("path", "")
        if not is_api_path(path) and "/score" not in path:
            extra += STUDIO
        if scope.get("scheme") == "https":
            extra.append(HSTS)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    h for h in extra if h[0] not in names
                ]
            await send(message)

        await self.app(scope, receive, with_headers)
