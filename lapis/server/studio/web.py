"""Rendering for the studio: templates, formatting filters, static files, error pages.

Every page goes through :func:`render`, which adds what the layout needs (the
signed-in principal, the CSRF token htmx sends back, whether the npm-built
assets are present). Jinja2 autoescapes every ``.html`` template, so user text
— a run named ``<script>`` — is shown as text; nothing in the studio marks
user data ``|safe``.

Errors on studio paths become pages (or, for htmx requests, a small fragment
htmx swaps into the page's message area) with the same message the API would
give, never a stack trace or a blank page; API paths keep their JSON errors.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from lapis.errors import LapisError
from lapis.version import __version__

log = logging.getLogger("lapis.studio")

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
VENDOR = STATIC / "vendor"
VENDOR_FILES = ("htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css")

API_PREFIXES = ("/api/", "/ajax-api/", "/metrics", "/healthz", "/openapi.json", "/docs", "/redoc")
OPEN_PATHS = frozenset({"/signin", "/signout", "/favicon.ico"})

# (section, link, label, the action needed to see it): the menu shows what one may open.
NAV = (
    ("home", "/", "Home", "workspaces/read"),
    ("experiments", "/experiments", "Experiments", "workspaces/experiments/read"),
    ("jobs", "/jobs", "Jobs", "workspaces/jobs/read"),
    ("compute", "/compute", "Compute", "workspaces/computes/read"),
    ("notebooks", "/notebooks", "Notebooks", "workspaces/notebooks/storage/read"),
    ("environments", "/environments", "Environments", "workspaces/environments/read"),
    ("data", "/data", "Data", "workspaces/datastores/read"),
    ("components", "/components", "Components", "workspaces/components/read"),
    ("models", "/models", "Models", "workspaces/models/read"),
    ("endpoints", "/endpoints", "Endpoints", "workspaces/onlineEndpoints/read"),
    ("admin", "/admin/users", "Admin", "workspaces/users/read"),
)

STATUS_TONES = {
    # jobs and runs
    "Completed": "ok",
    "FINISHED": "ok",
    "Running": "run",
    "RUNNING": "run",
    "Preparing": "run",
    "Provisioning": "wait",
    "Starting": "run",
    "Finalizing": "run",
    "Queued": "wait",
    "NotStarted": "wait",
    "Skipped": "off",
    "SCHEDULED": "wait",
    "CancelRequested": "wait",
    "Failed": "bad",
    "FAILED": "bad",
    "NotResponding": "bad",
    "Canceled": "off",
    "KILLED": "off",
    # computes, deployments, environments
    "Succeeded": "ok",
    "Ready": "ok",
    "Built": "ok",
    "Creating": "run",
    "Updating": "run",
    "Building": "run",
    "Stopping": "wait",
    "Restarting": "run",
    "Deleting": "wait",
    "Stopped": "off",
    "Draining": "wait",
    "NotReady": "wait",
}


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def is_open_path(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith("/static/")


def assets_ready() -> bool:
    return all((VENDOR / name).is_file() for name in VENDOR_FILES)


# --- filters -----------------------------------------------------------------------
def fmt_time(ms: int | None) -> str:
    """UTC ISO text for a ``<time>`` element; studio.js shows it in the browser's zone."""
    if not ms:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_duration(ms: int | float | None) -> str:
    if ms is None or ms < 0:
        return ""
    seconds = ms / 1000
    if seconds < 1:
        return f"{ms:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def fmt_number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def tone(status: str | None) -> str:
    return STATUS_TONES.get(status or "", "off")


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters.update(time=fmt_time, duration=fmt_duration, num=fmt_number, tone=tone)
templates.env.globals.update(version=__version__)


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    section: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A page (or fragment) with what the layout needs added to ``context``."""
    from lapis.server.studio.session import csrf_token

    principal = getattr(request.state, "principal", None)

    def can(action: str) -> bool:
        """Pages hide what the signed-in user may not do (the server refuses it anyway)."""
        return principal is not None and bool(request.app.state.ws.auth.can(principal, action))

    ctx = {
        "principal": principal,
        "can": can,
        "nav": [item[:3] for item in NAV if can(item[3])],
        "csrf": csrf_token(request),
        "assets_ready": assets_ready(),
        "section": section,
        "path": request.url.path,
        **(context or {}),
    }
    return templates.TemplateResponse(request, name, ctx, status_code=status, headers=headers)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


# --- static files and errors ---------------------------------------------------------
def mount_static(app: FastAPI) -> None:
    STATIC.mkdir(parents=True, exist_ok=True)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")


def error_page(request: Request, status: int, message: str) -> Response:
    """The page (or htmx fragment) that tells the user what went wrong."""
    if is_htmx(request):
        body = f'<div class="flash bad" role="alert">{html.escape(message)}</div>'
        # htmx does not swap 4xx/5xx answers by default: retarget into the message area.
        return HTMLResponse(
            body,
            status_code=status,
            headers={"HX-Retarget": "#messages", "HX-Reswap": "innerHTML"},
        )
    return render(request, "error.html", {"status": status, "message": message}, status=status)


def install_error_pages(app: FastAPI) -> None:
    """Wrap the JSON error handlers: studio paths get pages, API paths keep JSON."""
    json_handlers: dict[Any, Any] = dict(app.exception_handlers)

    async def lapis_error(request: Request, exc: Exception) -> Response:
        if is_api_path(request.url.path):
            answer: Response = await json_handlers[LapisError](request, exc)
            return answer
        assert isinstance(exc, LapisError)
        return error_page(request, exc.http_status, exc.message)

    async def http_error(request: Request, exc: Exception) -> Response:
        if is_api_path(request.url.path):
            handler = json_handlers[StarletteHTTPException]
            answer: Response = await handler(request, exc)
            return answer
        assert isinstance(exc, StarletteHTTPException)
        message = (
            f"There is no page at {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        )
        return error_page(request, exc.status_code, message)

    async def validation_error(request: Request, exc: Exception) -> Response:
        if is_api_path(request.url.path):
            handler = json_handlers[RequestValidationError]
            answer: Response = await handler(request, exc)
            return answer
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        return error_page(request, 400, f"Invalid request: {problems}")

    app.add_exception_handler(LapisError, lapis_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
