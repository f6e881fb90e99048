"""Helpers for the studio's browser tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("LAPIS_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
RESULTS = Path(__file__).resolve().parents[2] / "test-results" / "studio"


class Studio:
    """A signed-in browser tab on one server, with a screenshot helper."""

    def __init__(self, page: Any, server: Any, folder: Path) -> None:
        self.page = page
        self.server = server
        self.folder = folder

    def url(self, path: str) -> str:
        return f"{self.server.url}{path}"

    def go(self, path: str) -> Any:
        response = self.page.goto(self.url(path))
        self.page.wait_for_load_state("domcontentloaded")
        return response

    def shot(self, name: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{name}.png"
        self.page.screenshot(path=str(target), full_page=True)
        return target


def sign_in(page: Any, server: Any, token: str | None = None) -> None:
    page.goto(f"{server.url}/signin")
    page.fill("#token", token or server.token)
    page.click("#token-signin button[type=submit]")
    page.wait_for_load_state("domcontentloaded")


def http_sign_in(http: Any, token: str) -> Any:
    """Sign an httpx client in as the browser would: the form's CSRF value, then the post."""
    http.get("/signin")
    csrf = http.cookies.get("lapis_csrf")
    return http.post("/signin", data={"token": token, "next": "/", "csrf": csrf})
