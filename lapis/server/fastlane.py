"""The fast lane: the tracking writes a training loop repeats, answered in one hop.

A ``log_metric`` call is a few hundred bytes and one row; passing it through
the whole stack — five middlewares, Starlette's router, a ``Request`` object,
the catch-all MLflow route — cost about as much as the write itself (half of
the server's time per call, measured with py-spy). This middleware sits
outside the others and serves only ``POST`` to the paths in :data:`HOT`, doing
what the stack would do for them, in the same order and with the same code:

1. the body is read whole, within the request-size limit (``Content-Length``
   must be present and within it);
2. the bearer token is authenticated (:meth:`AuthService.authenticate`, cached);
3. the route's action is authorized (:func:`authorize_mlflow`; a job's reach is
   checked on a worker thread, as in the catch-all route);
4. the handler runs — its event-loop variant first (:data:`NOW`), else on a
   worker thread — and its answer or error leaves as the stack's JSON would,
   with the security headers;
5. the write is recorded in the audit trail.

Anything unusual before the handler runs — no or a bad token, a refusal, a
malformed or oversized body, a query string — is not handled here: the
request goes to the full stack with its body replayed, so refusals, 401s and
413s are answered (and audited) by the one code path that owns them. The
handler itself runs once, here or there, never twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lapis.errors import LapisError
from lapis.server.audit import AuditWriter, audit_row
from lapis.server.authorize import authorize_mlflow, mlflow_action
from lapis.server.body import parse_object
from lapis.server.context import Workspace
from lapis.server.errors import error_answer
from lapis.server.headers import ALWAYS, HSTS
from lapis.server.routers.mlflow._handler import (
    MLFLOW_PREFIXES,
    NOW,
    Args,
    Ctx,
    Dispatcher,
    Handler,
    NowHandler,
)

# The calls a training loop makes again and again; everything else takes the full stack.
HOT = ("/runs/log-metric", "/runs/log-batch", "/runs/log-parameter", "/runs/set-tag")
JSON = (b"content-type", b"application/json")


class Lane:
    """One hot route: its handler, event-loop variant and declared action."""

    __slots__ = ("action", "handler", "now")

    def __init__(self, handler: Handler, now: NowHandler | None, action: str) -> None:
        self.handler = handler
        self.now = now
        self.action = action


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body over once, then the real one."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


class FastLane:
    def __init__(
        self,
        app: ASGIApp,
        workspace: Workspace,
        dispatcher: Dispatcher,
        audit: AuditWriter,
        max_body: int,
        prefixes: Sequence[str] = MLFLOW_PREFIXES,
    ) -> None:
        self.app = app
        self.ws = workspace
        self.audit = audit
        self.max_body = max_body
        self.lanes: dict[str, Lane] = {}
        for path in HOT:
            found = dispatcher.resolve("POST", path)
            if found is None:
                continue
            handler, _, template = found
            lane = Lane(handler, NOW.get(handler), mlflow_action("POST", template))
            for prefix in prefixes:
                self.lanes[prefix + path] = lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope["query_string"]:
            lane = self.lanes.get(scope["path"])
        if lane is None:
            await self.app(scope, receive, send)
            return
        declared = -1
        authorization: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = int(value) if value.isdigit() else -1
            elif name == b"authorization":
                authorization = value
        if declared < 1 or declared > self.max_body or authorization is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        received, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            received += len(chunk)
            more = message.get("more_body", False)
            if received > declared:  # more than announced: let the guard count it
                break
        body = b"".join(chunks)
        if more or received != declared:
            await self.app(scope, replay(body, receive), send)
            return
        ws = self.ws
        try:
            principal = ws.auth.authenticate(authorization.decode("latin-1"))
            data = parse_object(body, allow_empty=False)
            if principal.job is None:  # roles only: decided in memory
                authorize_mlflow(ws, principal, lane.action, data, {})
            else:  # a job's reach may look runs up in the store
                await run_in_threadpool(authorize_mlflow, ws, principal, lane.action, data, {})
        except LapisError:  # 401, 403, 400: answered and audited by the full stack
            await self.app(scope, replay(body, receive), send)
            return
        state = scope.setdefault("state", {})
        state["principal"], state["action"] = principal, lane.action
        extra: list[tuple[bytes, bytes]] = []
        try:
            args, ctx = Args(data), Ctx(ws, principal, {})
            answer = lane.now(args, ctx) if lane.now is not None else None
            if answer is None:
                answer = await run_in_threadpool(lane.handler, args, ctx)
            status, payload = 200, orjson.dumps(answer)
        except Exception as exc:  # the same answer the stack's handlers give
            status, payload, extra = error_answer(exc, scope)
        headers = [JSON, (b"content-length", str(len(payload)).encode()), *ALWAYS, *extra]
        if scope.get("scheme") == "https":
            headers.append(HSTS)
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
        finally:
            self.audit.record(audit_row(scope, status))
