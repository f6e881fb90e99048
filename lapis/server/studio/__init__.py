"""Lapis studio: the web UI, served by ``lapis server`` at ``/``.

Server-rendered Jinja2 pages made live with htmx; charts drawn by uPlot on a
canvas from series the server has already downsampled. Both libraries come
from the npm registry (``package.json``) and are copied into
``static/vendor`` by ``make studio-assets``; nothing is copied in by hand.
Pages talk to the services in-process (no HTTP hop to our own API) and sign
in with a token kept in an HttpOnly cookie (see :mod:`.session`).

Layout: ``web.py`` (templates, rendering, the route class that turns errors
into pages), ``session.py`` (sign-in, the cookie, CSRF), ``pages/`` (one
module per area: home, runs, jobs, compute, environments, models,
endpoints), ``templates/`` and ``static/``.
"""

from __future__ import annotations

from fastapi import FastAPI

from lapis.server.studio import web
from lapis.server.studio.pages import ROUTERS


def install(app: FastAPI) -> None:
    """Mount the studio's static files and pages, and make errors on its paths HTML."""
    web.mount_static(app)
    for router in ROUTERS:
        app.include_router(router)
    web.install_error_pages(app)
