"""The scoring data plane: ``POST /api/v1/endpoints/{name}/score`` as raw ASGI.

This is the hot path of online serving, so it sits *outside* the bearer-token
middleware and FastAPI's routing: it sees every request first, handles the
scoring path itself and passes everything else on untouched. Per request it
does, without touching the database:

1. look the endpoint up in the route table the control plane publishes
   (:mod:`lapis.endpoints.data.routing`);
2. check ``Authorization: Bearer <key>`` against the endpoint's keys in
   constant time (scoring needs the endpoint key, never a user token);
3. choose a deployment — the ``azureml-model-deployment`` header if given,
   else a weighted random draw over ``traffic``;
4. choose the ready instance with the fewest requests in flight; at
   ``max_concurrent_requests_per_instance`` everywhere it answers 429 at
   once, with no ready instance 503 + ``Retry-After`` — it never queues;
5. forward the body over a pooled keep-alive connection
   (:mod:`lapis.endpoints.data.upstream`) within ``request_timeout_ms`` (else
   408); a refused or reset connection is reported to the control plane and
   the request is tried once on a sibling instance;
6. answer with the instance's status and body plus ``x-request-id`` and
   ``azureml-model-deployment`` headers, as Azure does, then copy the request
   to mirror (shadow) deployments in the background and record telemetry.

Error bodies are Lapis' ``{"error_code", "message"}`` plus ``request_id``;
an instance's own 4xx/5xx bodies pass through unchanged.
"""

from __future__ import annotations

import asyncio
import hmac
import random
import time
import uuid
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from lapis.endpoints import tokens
from lapis.endpoints.data.routing import DeploymentRoute, EndpointRoute, Instance
from lapis.endpoints.data.upstream import (
    ConnectFailed,
    UpstreamError,
    UpstreamPool,
    UpstreamTimeout,
)

PREFIX = "/api/v1/endpoints/"
SUFFIX = "/score"
SCORE_PATH = b"/score"
MAX_BODY = 100 * 1024 * 1024  # the runtime's own limit
JSON = b"application/json"


class Answer(Exception):
    """A response the proxy makes itself (not the instance's)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        deployment: str | None = None,
        retry_after: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.deployment = deployment
        self.retry_after = retry_after

    def response(
        self, request_id: bytes, deployment: str
    ) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """Headers and JSON body of this answer."""
        body = orjson.dumps(
            {
                "error_code": self.code,
                "message": self.message,
                "request_id": request_id.decode("latin-1"),
            }
        )
        headers = _headers(JSON, body, request_id, deployment)
        if self.status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        if self.retry_after:
            headers.append((b"retry-after", b"1"))
        if self.status == 405:
            headers.append((b"allow", b"POST"))
        return headers, body


class ScoringProxy:
    """ASGI middleware answering the scoring path; everything else goes to ``app``."""

    def __init__(self, app: ASGIApp, workspace: Any) -> None:
        self.app = app
        self.ws = workspace
        self.pool = UpstreamPool()
        self._background: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith(PREFIX) and path.endswith(SUFFIX):
                name = path[len(PREFIX) : -len(SUFFIX)]
                if name and "/" not in name:
                    await self._score(name, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    # --- one scoring request -----------------------------------------------------------
    async def _score(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        auth = wanted = given_id = content_type = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                auth = value
            elif key == b"azureml-model-deployment":
                wanted = value
            elif key == b"x-request-id":
                given_id = value
            elif key == b"content-type":
                content_type = value
        request_id = _request_id(given_id)
        route: EndpointRoute | None = self.ws.routes.get(name)
        endpoint = route.name if route is not None else name
        deployment = ""
        try:
            if scope["method"] != "POST":
                raise Answer(405, "BAD_REQUEST", f"score with POST, not {scope['method']}")
            if route is None:
                await self._unrouted(name, auth)  # always raises
                return
            if not _authorized(route.name, route.auth_mode, route.keys, auth):
                what = "an unexpired token" if route.auth_mode == "aml_token" else "a valid key"
                raise Answer(
                    401,
                    "UNAUTHENTICATED",
                    f"{what} of endpoint '{route.name}' is required: send "
                    "'Authorization: Bearer <credential>' (lapis online-endpoint get-credentials)",
                )
            body = await _read_body(receive)
            dep = _chosen(route, wanted)
            deployment = dep.name
            extra = b"x-request-id: " + request_id + b"\r\n"
            if content_type is not None:
                extra += b"Content-Type: " + content_type + b"\r\n"
            status, out_type, out = await self._forward(route.name, dep, body, extra)
        except ClientGone:
            return
        except Answer as answer:
            deployment = answer.deployment or deployment
            headers, out = answer.response(request_id, deployment)
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            await send({"type": "http.response.body", "body": out})
            if route is not None:  # unknown names are not counted: no unbounded label sets
                elapsed = time.perf_counter() - started
                self.ws.telemetry.record(endpoint, deployment, answer.status, elapsed)
            return
        headers = _headers(out_type, out, request_id, deployment)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": out})
        self.ws.telemetry.record(endpoint, deployment, status, time.perf_counter() - started)
        if route.mirror_traffic and wanted is None:
            self._mirror(route, dep, body, extra)

    async def _unrouted(self, name: str, auth: bytes | None) -> None:
        """No route: the endpoint is unknown, or has nothing deployed (a database look-up)."""
        found = await run_in_threadpool(self.ws.endpoints.store.get, name)
        if found is None:
            raise Answer(404, "RESOURCE_DOES_NOT_EXIST", f"online endpoint '{name}' does not exist")
        keys = (found.primary_key, found.secondary_key)
        if not _authorized(found.name, found.auth_mode, keys, auth):
            raise Answer(
                401, "UNAUTHENTICATED", f"a valid credential of endpoint '{found.name}' is required"
            )
        raise Answer(
            503,
            "TEMPORARILY_UNAVAILABLE",
            f"endpoint '{found.name}' has no deployment serving yet; "
            "create one with lapis online-deployment create",
            retry_after=True,
        )

    async def _forward(
        self, endpoint: str, dep: DeploymentRoute, body: bytes, extra: bytes
    ) -> tuple[int, bytes, bytes]:
        """Send to a free instance; on a dead one, report it and try one sibling."""
        timeout = dep.request_timeout_ms / 1000
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        failed: Instance | None = None
        for _attempt in range(2):
            inst = _free_instance(dep, failed)
            inst.in_flight += 1
            try:
                response = await self.pool.post(
                    inst.address, SCORE_PATH, body, extra, max(deadline - loop.time(), 0.001)
                )
                return response.status, response.content_type, response.body
            except UpstreamTimeout:
                raise Answer(
                    408,
                    "REQUEST_TIMEOUT",
                    f"deployment '{dep.name}' did not answer within request_timeout_ms="
                    f"{dep.request_timeout_ms}; raise request_settings.request_timeout_ms "
                    "or make scoring faster",
                    dep.name,
                ) from None
            except ConnectFailed:
                self._lost(endpoint, inst)
                failed = inst
            except UpstreamError as exc:
                self._lost(endpoint, inst)
                raise Answer(
                    502, "BAD_GATEWAY", f"instance {inst.label} failed: {exc}", dep.name
                ) from None
            finally:
                inst.in_flight -= 1
        assert failed is not None
        raise Answer(
            503,
            "TEMPORARILY_UNAVAILABLE",
            f"instances of deployment '{dep.name}' are unreachable ({failed.label} is "
            "restarting); retry shortly",
            dep.name,
            retry_after=True,
        )

    def _lost(self, endpoint: str, inst: Instance) -> None:
        self.pool.discard(inst.address)
        self.ws.routes.report_failure(endpoint, inst)

    # --- mirror traffic ----------------------------------------------------------------
    def _mirror(
        self, route: EndpointRoute, primary: DeploymentRoute, body: bytes, extra: bytes
    ) -> None:
        for name, percent in route.mirror_traffic.items():
            if percent <= 0 or random.random() * 100 >= percent:
                continue
            shadow = route.deployment(name)
            if shadow is None or shadow is primary:
                continue
            task = asyncio.get_running_loop().create_task(
                self._shadow(route.name, shadow, body, extra)
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _shadow(self, endpoint: str, dep: DeploymentRoute, body: bytes, extra: bytes) -> None:
        """Fire and forget: the response is discarded, only telemetry sees it."""
        started = time.perf_counter()
        try:
            inst = _free_instance(dep, None)
        except Answer as answer:
            status = answer.status
        else:
            inst.in_flight += 1
            try:
                response = await self.pool.post(
                    inst.address, SCORE_PATH, body, extra, dep.request_timeout_ms / 1000
                )
                status = response.status
            except UpstreamTimeout:
                status = 408
            except UpstreamError:
                status = 503
            finally:
                inst.in_flight -= 1
        elapsed = time.perf_counter() - started
        self.ws.telemetry.record(endpoint, dep.name, status, elapsed, mirrored=True)


# --- helpers (module level: cheaper than attribute look-ups on self) ----------------------
def _request_id(given: bytes | None) -> bytes:
    if given and len(given) <= 128 and given.isascii() and given.strip() == given:
        return given
    return uuid.uuid4().hex.encode()


def _authorized(name: str, auth_mode: str, keys: tuple[str, ...], auth: bytes | None) -> bool:
    """A key of a ``key`` endpoint, or an unexpired token of an ``aml_token`` one (whose
    keys are not accepted: Azure gives such an endpoint's callers tokens only)."""
    if auth_mode != "aml_token":
        return _key_matches(keys, auth)
    scheme, _, token = (auth or b"").partition(b" ")
    return scheme.lower() == b"bearer" and tokens.verify(token.strip(), name, keys[0])


def _key_matches(keys: tuple[str, ...], auth: bytes | None) -> bool:
    """Whether ``Authorization: Bearer <key>`` holds one of ``keys`` (constant time)."""
    if not auth:
        return False
    scheme, _, token = auth.partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    token = token.strip()
    ok = False
    for key in keys:  # compare against every key, so timing says nothing about which
        ok |= hmac.compare_digest(token, key.encode())
    return ok and bool(token)


class ClientGone(Exception):
    """The caller disconnected before sending the whole body: nothing to answer."""


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if message["type"] == "http.disconnect":
            raise ClientGone
        return body
    parts = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise Answer(413, "BAD_REQUEST", "request body over 100 MB")
        parts.append(chunk)
    return b"".join(parts)


def _chosen(route: EndpointRoute, wanted: bytes | None) -> DeploymentRoute:
    """The header's deployment, or a weighted draw over the endpoint's traffic."""
    if wanted is not None:
        name = wanted.decode("latin-1").strip()
        dep = route.deployment(name)
        if dep is None:
            known = ", ".join(d.name for d in route.deployments.values()) or "none"
            raise Answer(
                404,
                "RESOURCE_DOES_NOT_EXIST",
                f"endpoint '{route.name}' has no deployment '{name}' (azureml-model-deployment "
                f"header); deployments: {known}",
            )
        if not dep.instances:
            raise Answer(
                400,
                "INVALID_STATE",
                f"deployment '{dep.name}' of endpoint '{route.name}' has no instances",
                dep.name,
            )
        return dep
    total = 0
    for weight in route.traffic.values():
        total += weight
    if total <= 0:
        raise Answer(
            503,
            "TEMPORARILY_UNAVAILABLE",
            f"endpoint '{route.name}' has no traffic set; set --traffic "
            f"(lapis online-endpoint update {route.name} --traffic DEPLOYMENT=100) "
            "or name a deployment in the azureml-model-deployment header",
        )
    draw = random.random() * total
    chosen = ""
    for name, weight in route.traffic.items():
        if weight > 0:
            chosen = name  # the last positive share wins if rounding leaves a remainder
            draw -= weight
            if draw < 0:
                break
    dep = route.deployment(chosen)
    if dep is None:
        raise Answer(
            503,
            "TEMPORARILY_UNAVAILABLE",
            f"deployment '{chosen}' of endpoint '{route.name}' is not serving yet",
            chosen,
            retry_after=True,
        )
    return dep


def _free_instance(dep: DeploymentRoute, exclude: Instance | None) -> Instance:
    """The ready instance with the fewest requests in flight, or an :class:`Answer`."""
    best: Instance | None = None
    for inst in dep.instances:
        if (
            inst.ready
            and not inst.draining
            and inst is not exclude
            and (best is None or inst.in_flight < best.in_flight)
        ):
            best = inst
    if best is None:
        starting = sum(1 for i in dep.instances if not i.ready and not i.draining)
        why = (
            f"{starting} instance(s) starting or restarting"
            if starting
            else "no instance is running"
        )
        if exclude is not None:
            why = f"instance {exclude.label} is unreachable and no other is ready"
        raise Answer(
            503,
            "TEMPORARILY_UNAVAILABLE",
            f"deployment '{dep.name}' has no ready instance ({why}); retry shortly",
            dep.name,
            retry_after=True,
        )
    if best.in_flight >= dep.max_concurrent_requests_per_instance:
        raise Answer(
            429,
            "TOO_MANY_REQUESTS",
            f"deployment '{dep.name}' is at capacity: {len(dep.serving())} instance(s) x "
            f"max_concurrent_requests_per_instance={dep.max_concurrent_requests_per_instance} "
            "requests in flight; retry later or raise instance_count or "
            "max_concurrent_requests_per_instance",
            dep.name,
        )
    return best


def _headers(
    content_type: bytes, body: bytes, request_id: bytes, deployment: str
) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id),
    ]
    if deployment:
        headers.append((b"azureml-model-deployment", deployment.encode()))
    return headers
