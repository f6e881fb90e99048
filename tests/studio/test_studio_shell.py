"""The studio's shell in a real browser: sign in and out, redirects, errors, the home page."""

from __future__ import annotations

from typing import Any

import httpx
from studiokit import Studio, http_sign_in, sign_in


def test_sign_in_home_and_sign_out(browser: Any, lapis_server: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{lapis_server.url}/jobs?x=1")
        assert "/signin?next=" in page.url  # not signed in: sent to the sign-in page
        page.fill("#token", "not-a-token")
        page.click("button[type=submit]")
        assert "not valid" in page.inner_text("[role=alert]")
        sign_in(page, lapis_server)
        assert page.locator("h1").first.inner_text() == "Workspace"
        cookie = next(c for c in context.cookies() if c["name"] == "lapis_token")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert page.evaluate("document.cookie").find("lapis_token") == -1  # scripts can't read it
        page.click("text=Sign out")
        page.wait_for_url("**/signin")
        page.goto(f"{lapis_server.url}/")
        assert "/signin" in page.url
    finally:
        context.close()


def test_home_lists_computes_and_errors_are_pages(studio: Studio) -> None:
    studio.go("/")
    assert "local" in studio.page.inner_text("main")
    studio.shot("home")
    response = studio.go("/no/such/page")
    assert response.status == 404
    assert "There is no page at /no/such/page" in studio.page.inner_text("[role=alert]")
    studio.shot("not-found")


def test_cookie_is_not_accepted_by_the_api_and_posts_need_csrf(lapis_server: Any) -> None:
    with httpx.Client(base_url=lapis_server.url) as http:
        # sign-in itself needs the form's CSRF value (no login CSRF from other sites)
        refused = http.post("/signin", data={"token": lapis_server.token, "next": "/"})
        assert refused.status_code == 403 and "lapis_token" not in http.cookies
        signed = http_sign_in(http, lapis_server.token)
        assert signed.status_code == 303 and "lapis_token" in http.cookies
        assert http.get("/").status_code == 200
        assert http.get("/api/v1/jobs").status_code == 401  # the API wants the bearer header
        assert http.post("/jobs/nope/cancel").status_code == 403  # cookie POST, no CSRF
        csrf = http.cookies["lapis_csrf"]
        answered = http.post("/jobs/nope/cancel", headers={"X-CSRF-Token": csrf})
        assert answered.status_code in (404, 405)
