"""Every studio page and fragment: no entry without signing in, and user text stays text.

The routes are enumerated from the studio's routers, so a page added later is
covered without touching this file.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from jobkit import http_for, lapis_cli, submit, wait, write_job
from studiokit import Studio

from lapis.server.studio.pages import ROUTERS

EVIL = "<script>alert(1)</script>"


def studio_routes() -> list[tuple[str, str]]:
    """(method, path) of every studio route, path parameters filled with a placeholder."""
    found = []
    for router in ROUTERS:
        for route in router.routes:
            path = getattr(route, "path", "")
            for method in sorted(getattr(route, "methods", set()) - {"HEAD"}):
                found.append((method, re.sub(r"\{[^}]+\}", "x1", path)))
    return sorted(set(found))


OPEN = {("GET", "/signin"), ("POST", "/signin"), ("POST", "/signout")}


@pytest.mark.parametrize("method,path", [r for r in studio_routes() if r not in OPEN])
def test_every_route_needs_sign_in(lapis_server: Any, method: str, path: str) -> None:
    with httpx.Client(base_url=lapis_server.url, follow_redirects=False) as http:
        page = http.request(method, path)
        assert page.status_code == 303, (method, path, page.status_code)
        assert page.headers["location"].startswith("/signin?next=")
        fragment = http.request(method, path, headers={"HX-Request": "true"})
        assert fragment.status_code == 401 and fragment.headers["hx-redirect"].startswith(
            "/signin?next="
        )
    with httpx.Client(
        base_url=lapis_server.url, cookies={"lapis_token": "revoked-or-made-up"}
    ) as stale_client:
        assert stale_client.request(method, path).status_code == 303


def test_there_are_routes_to_check() -> None:
    paths = {p for _, p in studio_routes()}
    assert {"/", "/signin"} <= paths and len(paths) > 5, paths


def test_user_text_is_shown_as_text(studio: Studio, tmp_path: Any) -> None:
    server = studio.server
    uid = uuid.uuid4().hex[:6]
    job_file = write_job(
        tmp_path,
        f"""\
        command: echo hi
        display_name: "{EVIL}"
        experiment_name: "evil-{uid}"
        description: "{EVIL}"
        tags: {{note: "{EVIL}"}}
        environment: system
        """,
    )
    job = wait(server, submit(server, job_file)["name"])
    ep = f"evil-{uid}"
    made = lapis_cli(server, "online-endpoint", "create", "--name", ep)
    assert made.returncode == 0, made.stderr
    with http_for(server) as http:
        http.request("PATCH", f"/api/v1/endpoints/{ep}", json_body={"description": EVIL})
        exp_id = http.get("/api/2.0/mlflow/experiments/get-by-name",
                          experiment_name=f"evil-{uid}")["experiment"]["experiment_id"]  # fmt: skip
    dialogs: list[str] = []
    studio.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pages = ["/", "/jobs", f"/jobs/{job['name']}", f"/runs/{job['run_id']}",
             f"/experiments/{exp_id}", "/endpoints", f"/endpoints/{ep}"]  # fmt: skip
    for path in pages:
        response = studio.go(path)
        assert response.status < 500, (path, response.status)
        raw = response.text()
        assert EVIL not in raw, f"{path} sends the text unescaped"
        studio.page.wait_for_timeout(100)
    assert dialogs == []
    studio.go(f"/jobs/{job['name']}")
    assert EVIL in studio.page.inner_text("main")  # shown, as text
    studio.shot("escaped-job")
