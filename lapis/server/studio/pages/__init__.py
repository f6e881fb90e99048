"""The studio's pages, one module per area; ``ROUTERS`` is what ``install`` mounts."""

from __future__ import annotations

from fastapi import APIRouter

from lapis.server.studio import session
from lapis.server.studio.pages import admin, compare, endpoint_actions, home, run_detail
from lapis.server.studio.pages import batch as batch_pages
from lapis.server.studio.pages import components as components_pages
from lapis.server.studio.pages import compute as compute_pages
from lapis.server.studio.pages import data as data_pages
from lapis.server.studio.pages import endpoints as endpoints_pages
from lapis.server.studio.pages import environments as environments_pages
from lapis.server.studio.pages import jobs as jobs_pages
from lapis.server.studio.pages import models as models_pages
from lapis.server.studio.pages import notebooks as notebooks_pages
from lapis.server.studio.pages import runs as runs_pages
from lapis.server.studio.pages import traces as traces_pages

ROUTERS: list[APIRouter] = [
    session.router,
    home.router,
    runs_pages.router,
    run_detail.router,
    traces_pages.router,
    compare.router,
    jobs_pages.router,
    compute_pages.router,
    environments_pages.router,
    data_pages.router,
    components_pages.router,
    notebooks_pages.router,
    models_pages.router,
    batch_pages.router,
    endpoints_pages.router,
    endpoint_actions.router,
    admin.router,
]
