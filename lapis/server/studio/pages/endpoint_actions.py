"""What the endpoint page does: save traffic, test-invoke, telemetry for the charts, logs.

**Traffic** is posted by a small form (one whole-percent input per deployment
for live traffic and for mirror traffic). The browser checks the total as the
user types (endpoints.js) but the server decides: the live split goes through
:meth:`EndpointService.set_traffic` — the same rule the API and the CLI use,
so a refusal reads the same — and the mirror split through ``update``. Both
are checked before either is written, so a bad mirror share cannot leave a
half-applied change.

**Test** sends the user's JSON through the real scoring path: an HTTP POST
with the endpoint's key to this server's own scoring URL, exactly what a
caller does. That is the one place the studio talks HTTP to its own server,
on purpose: the scoring route is the raw ASGI proxy in front of the app
(key check, traffic pick, ``azureml-model-deployment`` header, telemetry,
the proxy's own 4xx/5xx answers), and going around it would test something
callers never see. The answer — status, body, request id, the deployment
that answered, latency — is shown whatever its status; only a server that
does not answer at all is an error.

**Telemetry** is the in-memory series the proxy records
(:mod:`lapis.endpoints.data.telemetry`), returned as columns ready for uPlot.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from lapis.endpoints.data.telemetry import RING_SECONDS
from lapis.errors import InvalidParameterValue, TemporarilyUnavailable
from lapis.server.studio.pages.endpoints import base_url, deployment_rows
from lapis.server.studio.web import render
from lapis.specs.endpoint import validate_traffic

TEST_TIMEOUT_S = 30.0
MAX_SHOWN_BODY = 200_000  # characters of an answer shown on the page
LOG_LINES = 200

router = APIRouter(include_in_schema=False)


def shares(form: Mapping[str, Any], prefix: str, what: str) -> dict[str, int]:
    """``{prefix}<deployment>`` fields as whole percents; empty means 0."""
    out: dict[str, int] = {}
    for key, raw in form.items():
        if not key.startswith(prefix):
            continue
        name, text = key[len(prefix) :], str(raw).strip()
        try:
            out[name] = int(text) if text else 0
        except ValueError:
            raise InvalidParameterValue(
                f"{what}: '{name}' must be a whole percent from 0 to 100, got '{text}'"
            ) from None
    return out


def _nonzero(split: Mapping[str, int]) -> dict[str, int]:
    return {k: v for k, v in split.items() if v}


@router.post("/endpoints/{name}/traffic")
async def save_traffic(request: Request, name: str) -> Response:
    ws = request.app.state.ws
    form = await request.form()
    traffic = shares(form, "traffic.", "traffic")
    mirror = _nonzero(shares(form, "mirror.", "mirror_traffic"))

    def work() -> dict[str, Any]:
        e = ws.endpoints.get(name)
        validate_traffic(traffic)  # both checked before either is written
        validate_traffic(mirror, "mirror_traffic")
        e = ws.endpoints.set_traffic(e.name, traffic)
        if mirror != _nonzero(e.mirror_traffic):
            e = ws.endpoints.update(e.name, {"mirror_traffic": mirror})
        return {
            "e": ws.endpoints.describe(e, base_url(request)),
            "deployments": deployment_rows(ws, e.name),
            "saved": True,
        }

    return render(request, "endpoints/_traffic.html", await run_in_threadpool(work))


@router.post("/endpoints/{name}/test")
async def test_invoke(request: Request, name: str) -> Response:
    ws = request.app.state.ws
    form = await request.form()
    body = str(form.get("body") or "")
    deployment = str(form.get("deployment") or "").strip()
    e = await run_in_threadpool(ws.endpoints.get, name)
    url = f"{base_url(request)}/api/v1/endpoints/{quote(e.name, safe='')}/score"
    credential = (
        str(ws.endpoints.get_credentials(e.name)["accessToken"])
        if e.auth_mode == "aml_token"
        else e.primary_key
    )
    headers = {"Authorization": f"Bearer {credential}", "Content-Type": "application/json"}
    if deployment:
        headers["azureml-model-deployment"] = deployment
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(timeout=TEST_TIMEOUT_S) as client:
            answer = await client.post(url, content=body.encode(), headers=headers)
    except httpx.HTTPError as exc:
        raise TemporarilyUnavailable(
            f"The scoring URL {url} did not answer: {type(exc).__name__} {exc}".rstrip()
        ) from None
    latency_ms = (time.perf_counter() - started) * 1000
    text = answer.text
    try:
        shown = json.dumps(answer.json(), indent=2)
    except ValueError:
        shown = text
    ctx = {
        "status": answer.status_code,
        "ok": answer.is_success,
        "body": shown[:MAX_SHOWN_BODY],
        "truncated": len(shown) > MAX_SHOWN_BODY,
        "request_id": answer.headers.get("x-request-id", ""),
        "answered_by": answer.headers.get("azureml-model-deployment", ""),
        "latency_ms": latency_ms,
        "asked": deployment,
    }
    return render(request, "endpoints/_test_result.html", ctx)


@router.get("/endpoints/{name}/telemetry")
async def telemetry(
    request: Request, name: str, minutes: int = Query(15, ge=1, le=RING_SECONDS // 60)
) -> Response:
    """Requests/s, p50/p99 latency and errors per deployment over the last ``minutes``."""
    ws = request.app.state.ws
    route = ws.routes.get(name)
    display = route.name if route else (await run_in_threadpool(ws.endpoints.get, name)).name
    report = ws.telemetry.report(display, minutes * 60)
    series = {
        dep: {k: body["timeseries"][k] for k in ("t", "rps", "p50_ms", "p99_ms", "errors")}
        for dep, body in report["deployments"].items()
        if body["recent"]["requests"]
    }
    recent = report["totals"]["recent"]
    return JSONResponse(
        {
            "endpoint": display,
            "window_seconds": report["window_seconds"],
            "step_seconds": report["timeseries"]["step_seconds"],
            "recent": recent,
            "deployments": series,
        }
    )


@router.get("/endpoints/{name}/deployments/{deployment}/logs")
async def deployment_logs(request: Request, name: str, deployment: str) -> Response:
    """The last lines of the deployment log and each instance's output."""
    ws = request.app.state.ws

    def work() -> dict[str, Any]:
        d = ws.deployments.get(name, deployment)
        return {
            "endpoint": name,
            "deployment": d.name,
            "text": ws.deployments.logs(name, d.name, LOG_LINES),
            "lines": LOG_LINES,
        }

    return render(request, "endpoints/_logs.html", await run_in_threadpool(work))
