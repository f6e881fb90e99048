"""``/compute/<name>/lab/…``: each instance's JupyterLab through the server's one port,
HTTP and WebSockets (kernels, terminals), as raw ASGI in front of the app.

It authenticates by itself, because WebSockets never reach the app's bearer middleware
and JupyterLab's own requests carry no studio CSRF header:
- a request carries ``Authorization: Bearer <Lapis token>`` (scripts, tests), or the
  studio's sign-in cookie (a browser); with the cookie, a state-changing request or a
  WebSocket must come from this server's own origin (``Origin`` is checked), so another
  site cannot drive a signed-in user's kernels;
- only the instance's user — its creator, or the user it was assigned to — gets in;
  everyone else gets 403, Owners included, as on Azure;
- an instance that is not Running answers 409 saying to start it; a lab still starting
  503 with ``Retry-After``; a browser gets those as a small page.

Upstream, the Lapis token and the studio's cookies are removed and JupyterLab's own token
put in their place: code running in a kernel can never read a credential of the server's.
Every request and WebSocket message counts as the instance's activity (idle shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lapis.errors import LapisError, ResourceDoesNotExist
from lapis.server.studio import session

PATH = re.compile(r"^/compute/(?P<name>[A-Za-z0-9_-]{1,64})/lab(?:/|$)")
# an interactive job's services (lapis/compute/job_services.py)
APP_PATH = re.compile(
    r"^/compute/(?P<name>[A-Za-z0-9_-]{1,64})/apps/(?P<app>[a-z][a-z0-9-]{0,31})(?:/|$)"
)
JOB_PATH = re.compile(r"^/jobs/(?P<job>[\w-]{1,255})/services/(?P<svc>[A-Za-z]\w{0,63})(?:/|$)")
HOP = {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
       b"trailers", b"transfer-encoding", b"upgrade", b"host", b"content-length"}  # fmt: skip
SAFE = {"GET", "HEAD", "OPTIONS"}
# checked here (the caller's credentials, the same-origin rule), so not passed on: the
# lab sees its own host, and its token instead of the user's
STRIPPED = {b"authorization", b"origin", b"referer"}
LAPIS_COOKIES = {session.TOKEN_COOKIE, session.CSRF_COOKIE}
ACCESS = "workspaces/computes/applicationaccess/action"  # Azure's, for the instance's tools


class Refused(Exception):
    def __init__(self, status: int, message: str, retry: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.retry = status, message, retry


class LabProxy:
    def __init__(self, app: ASGIApp, workspace: Any) -> None:
        self.app = app
        self.ws = workspace
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] in ("http", "websocket") else ""
        m, j, a = PATH.match(path), JOB_PATH.match(path), APP_PATH.match(path)
        if m is None and j is None and a is None:
            await self.app(scope, receive, send)
            return
        try:  # the store and the token check are blocking calls: off the event loop
            port, token, scope = await run_in_threadpool(self._decide, scope, m, j, a)
        except Refused as exc:
            await _refuse(scope, receive, send, exc)
            return
        manager = self.ws.labs

        def touched() -> None:
            instance = m or a
            if instance is not None and manager is not None:
                manager.touched(instance["name"].lower())

        touched()
        if scope["type"] == "websocket":
            await _websocket(scope, receive, send, port, token, touched)
        else:
            await self._http(scope, receive, send, port, token)

    # --- who may ---------------------------------------------------------------------
    def _decide(
        self,
        scope: Scope,
        m: re.Match[str] | None,
        j: re.Match[str] | None,
        a: re.Match[str] | None,
    ) -> tuple[int, str | None, Scope]:
        """Where the request goes (port, the upstream's own token, the scope it is sent
        with), or Refused saying why not."""
        principal = self._principal(scope)
        if m is not None:
            port, token = self._lab(m["name"].lower(), principal)
            return port, token, scope
        if a is not None:
            port, app_token = self._app(a["name"].lower(), a["app"], principal)
            # an application sees paths from its root ({base_url} says where it is)
            path = scope.get("path", "")
            raw = scope.get("raw_path") or path.encode("latin-1")  # still %-encoded
            rest = "/" + path[a.end() :].lstrip("/")
            rest_raw = b"/" + raw[a.end() :].lstrip(b"/")  # the prefix is plain ASCII
            return port, app_token, {**scope, "path": rest, "raw_path": rest_raw}
        assert j is not None
        port, service_token = self._service(j["job"], j["svc"], principal)
        return port, service_token, scope

    def _principal(self, scope: Scope) -> Any:
        headers = {k.lower(): v for k, v in scope["headers"]}
        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        by_cookie = False
        if authorization is None or not authorization.lower().startswith("bearer "):
            cookie = _cookies(headers.get(b"cookie", b"").decode("latin-1"))
            if not cookie.get(session.TOKEN_COOKIE):
                raise Refused(401, "sign in to the studio first, or send a Lapis token")
            authorization, by_cookie = f"Bearer {cookie[session.TOKEN_COOKIE]}", True
        try:
            principal = self.ws.auth.authenticate(authorization)
        except LapisError as exc:
            raise Refused(401, exc.message) from None
        if not self.ws.auth.can(principal, ACCESS):
            raise Refused(403, f"your role does not allow {ACCESS}")
        if by_cookie and (scope["type"] == "websocket" or scope.get("method") not in SAFE):
            origin = headers.get(b"origin", b"").decode("latin-1")
            host = headers.get(b"host", b"").decode("latin-1")
            if not origin or origin.split("://", 1)[-1] != host:
                raise Refused(403, "cross-site request refused: open it from the studio")
        return principal

    def _service(self, job_name: str, svc: str, principal: Any) -> tuple[int, str | None]:
        """A running job's service, for the job's submitter only."""
        from lapis.compute import job_services

        try:
            job = self.ws.jobs.get(job_name, events=False)
        except ResourceDoesNotExist:
            raise Refused(404, f"job '{job_name}' does not exist") from None
        if svc not in (job.spec.get("services") or {}):
            raise Refused(404, f"job {job.name} has no service '{svc}'")
        if (job.created_by or "").lower() != principal.name.lower():
            raise Refused(403, f"job {job.name}'s services are for its submitter, "
                               f"{job.created_by}, only")  # fmt: skip
        if job.status != "Running":
            raise Refused(409, f"job {job.name} is {job.status}: its services run while it runs")
        folder = self.ws.jobs.services(job)
        found = job_services.upstream(
            Path(str(job.handle["dir"])) if job.handle and job.handle.get("dir")
            else self.ws.jobs.job_dir(job.name), svc)  # fmt: skip
        if found is None:
            state = next((s["status"] for s in folder if s["name"] == svc), "Starting")
            raise Refused(503, f"service {svc} of job {job.name} is {state}", retry=True)
        return found

    def _app(self, name: str, app: str, principal: Any) -> tuple[int, str | None]:
        """One of the instance's custom applications, on the same terms as its lab."""
        self._lab(name, principal, check_only=True)
        manager = self.ws.labs
        port = manager.apps.upstream(name, app) if manager is not None else None
        if port is None:
            status = manager.apps.status(name, app) if manager is not None else "Stopped"
            if status == "Stopped":
                raise Refused(404, f"compute instance {name} has no application '{app}'")
            raise Refused(503, f"application {app} on {name} is {status}", retry=True)
        return port, None

    def _lab(self, name: str, principal: Any, check_only: bool = False) -> tuple[int, str]:
        try:
            compute = self.ws.compute.get(name)
        except ResourceDoesNotExist:
            raise Refused(404, f"compute '{name}' does not exist") from None
        if compute.type != "computeinstance":
            raise Refused(404, f"compute '{compute.name}' is a {compute.type}: only compute "
                               "instances have JupyterLab")  # fmt: skip
        if (compute.user or "").lower() != principal.name.lower():
            raise Refused(403, f"JupyterLab on {compute.name} is for its user, "
                               f"{compute.user}, only")  # fmt: skip
        if compute.state != "Running":
            raise Refused(409, f"compute instance {compute.name} is {compute.state}: start the "
                               f"instance (lapis compute start -n {compute.name})")  # fmt: skip
        manager = self.ws.labs
        if check_only:
            return 0, ""
        if manager is None:
            raise Refused(503, "this server process runs no JupyterLab servers", retry=True)
        found: tuple[int, str] | None = manager.upstream(name)
        if found is None:
            status = manager.status(name)
            if status.startswith("Unavailable"):
                raise Refused(501, status.split(": ", 1)[1])
            raise Refused(503, f"JupyterLab on {compute.name} is {status.lower()}; "
                               "try again in a few seconds", retry=True)  # fmt: skip
        return found

    # --- HTTP ------------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send, port: int,
                    token: str | None) -> None:  # fmt: skip
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(300, connect=5))
        url = _upstream_url("http", scope, port)

        async def body() -> Any:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                yield message.get("body", b"")
                if not message.get("more_body"):
                    return

        request = self._client.build_request(
            scope["method"], url, headers=_upstream_headers(scope, token),
            content=body() if scope["method"] not in SAFE else None,
        )  # fmt: skip
        try:
            resp = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            await _refuse(scope, receive, send, Refused(502, f"JupyterLab did not answer: {exc}"))
            return
        try:
            headers = [(k, v) for k, v in resp.headers.raw if k.lower() not in HOP]
            await send({"type": "http.response.start", "status": resp.status_code,
                        "headers": headers})  # fmt: skip
            async for chunk in resp.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await resp.aclose()


def _upstream_url(scheme: str, scope: Scope, port: int) -> str:
    """The same path and query on the lab's port (the lab serves the same base URL)."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scheme}://127.0.0.1:{port}{path}" + (f"?{query}" if query else "")


def _cookies(raw: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    with contextlib.suppress(Exception):
        jar.load(raw)
    return {k: m.value for k, m in jar.items()}


def _upstream_headers(scope: Scope, token: str | None) -> list[tuple[bytes, bytes]]:
    """The client's headers less hop-by-hop ones, its credentials, its origin and Lapis'
    cookies, plus JupyterLab's token."""
    out: list[tuple[bytes, bytes]] = []
    for key, value in scope["headers"]:
        k = key.lower()
        if k in HOP or k in STRIPPED or k.startswith(b"sec-websocket"):
            continue
        if k == b"cookie":
            kept = [part for part in value.decode("latin-1").split(";")
                    if part.split("=", 1)[0].strip() not in LAPIS_COOKIES]  # fmt: skip
            if not kept:
                continue
            value = ";".join(kept).strip().encode("latin-1")
        out.append((key, value))
    if token is not None:  # JupyterLab's own; TensorBoard has none
        out.append((b"authorization", f"token {token}".encode()))
    return out


async def _websocket(scope: Scope, receive: Receive, send: Send, port: int,
                     token: str | None, touched: Any) -> None:  # fmt: skip
    """Join the browser's WebSocket to one opened to JupyterLab, message for message."""
    import websockets

    url = _upstream_url("ws", scope, port)
    protocols = list(scope.get("subprotocols") or [])
    sent = _upstream_headers(scope, token)
    headers = [
        (k.decode("latin-1"), v.decode("latin-1")) for k, v in sent if k.lower() != b"origin"
    ]
    first = await receive()
    if first["type"] != "websocket.connect":
        return
    try:
        upstream = await websockets.connect(
            url, additional_headers=headers, subprotocols=protocols or None,
            max_size=None, open_timeout=10, ping_interval=None,
        )  # fmt: skip
    except Exception as exc:  # refused, or the lab went away
        await send({"type": "websocket.close", "code": 1011, "reason": str(exc)[:120]})
        return
    await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})

    async def client_to_lab() -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            touched()
            if message.get("text") is not None:
                await upstream.send(message["text"])
            elif message.get("bytes") is not None:
                await upstream.send(message["bytes"])

    async def lab_to_client() -> None:
        async for data in upstream:
            if isinstance(data, str):
                await send({"type": "websocket.send", "text": data})
            else:
                await send({"type": "websocket.send", "bytes": data})

    tasks = [asyncio.ensure_future(client_to_lab()), asyncio.ensure_future(lab_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await upstream.close()
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": 1000})


async def _refuse(scope: Scope, receive: Receive, send: Send, exc: Refused) -> None:
    """The refusal as JSON for clients, a small page for browsers; a WebSocket is closed
    before it is accepted (the client sees the handshake refused)."""
    if scope["type"] == "websocket":
        with contextlib.suppress(Exception):
            await receive()
        await send({"type": "websocket.close", "code": 4000 + exc.status})
        return
    import orjson

    accept = dict(scope["headers"]).get(b"accept", b"")
    headers: list[tuple[bytes, bytes]] = []
    if exc.retry:
        headers.append((b"retry-after", b"3"))
    if b"text/html" in accept:
        page = (f"<!doctype html><title>JupyterLab</title><p>{html.escape(exc.message)}</p>"
                '<p><a href="/compute">Compute</a></p>').encode()  # fmt: skip
        headers.append((b"content-type", b"text/html; charset=utf-8"))
        body = page
    else:
        code = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "RESOURCE_DOES_NOT_EXIST",
                409: "INVALID_STATE"}.get(exc.status, "TEMPORARILY_UNAVAILABLE")  # fmt: skip
        body = orjson.dumps({"error_code": code, "message": exc.message})
        headers.append((b"content-type", b"application/json"))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
