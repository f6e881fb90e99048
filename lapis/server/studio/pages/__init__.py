"""The studio's pages, one module per area; ``ROUTERS`` is what ``install`` mounts."""

from __future__ import annotations

from fastapi import APIRouter

from lapis.server.studio import session
from lapis.server.studio.pages import home

ROUTERS: list[APIRouter] = [session.router, home.router]
