"""Signing in to the studio: a token in an HttpOnly cookie, and CSRF protection.

The studio uses the same tokens as the API and the CLI (``lapis auth token``):
a user pastes one into the sign-in form; the server checks it and keeps it in
the ``lapis_token`` cookie — HttpOnly (page scripts cannot read it),
SameSite=Lax (other sites' forms do not carry it), Secure when served over
HTTPS. Every studio request is then authenticated by the same middleware as
the API (``lapis.server.auth``), which accepts the cookie on studio paths only
— never on ``/api`` — and redirects to this page when it is missing or no
longer valid.

State-changing studio requests (htmx POSTs) must also carry the
``X-CSRF-Token`` header equal to the ``lapis_csrf`` cookie (double submit):
the layout puts the value in a ``<meta>`` tag and studio.js adds the header
to every htmx request. A cross-site page can make a browser send the cookie
on a top-level POST but cannot read the CSRF cookie to set the header.

Sign-in and sign-out are plain form posts and carry the same value in a hidden
``csrf`` field instead, checked against the cookie (set by the sign-in page):
another site can neither sign a visitor in to an account of its choosing nor
sign them out. Users with a password sign in with name and password; that
makes a 12-hour session token which signing out revokes.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from lapis.errors import Unauthenticated
from lapis.server.studio.web import render

TOKEN_COOKIE = "lapis_token"
CSRF_COOKIE = "lapis_csrf"
CSRF_HEADER = "x-csrf-token"
MAX_AGE = 7 * 24 * 3600  # a week; the token itself may expire or be revoked sooner

router = APIRouter(include_in_schema=False)


def csrf_token(request: Request) -> str:
    return request.cookies.get(CSRF_COOKIE, "")


def csrf_ok(method: str, cookies: dict[str, str], header: str | None) -> bool:
    """Safe methods pass; others need the header to match the CSRF cookie."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return True
    expected = cookies.get(CSRF_COOKIE, "")
    return bool(expected) and hmac.compare_digest(expected, header or "")


def safe_next(target: str | None) -> str:
    """Only a path on this server (no ``//host`` or scheme): no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def signin_redirect(path: str, query: str = "") -> RedirectResponse:
    target = path + (f"?{query}" if query else "")
    return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)


def _set_csrf(response: Response, value: str, secure: bool) -> None:
    response.set_cookie(
        CSRF_COOKIE, value, max_age=MAX_AGE, httponly=False, samesite="lax", secure=secure, path="/"
    )


def _form_csrf_ok(request: Request, sent: str) -> bool:
    expected = request.cookies.get(CSRF_COOKIE, "")
    return bool(expected) and hmac.compare_digest(expected, sent)


@router.get("/signin")
async def signin_form(request: Request, next: str = "/") -> Response:
    value = csrf_token(request) or secrets.token_urlsafe(24)
    response = render(request, "signin.html", {"next": safe_next(next), "csrf": value})
    if not csrf_token(request):
        _set_csrf(response, value, request.url.scheme == "https")
    return response


@router.post("/signin")
async def signin(
    request: Request,
    token: str = Form(""),
    username: str = Form(""),
    password: str = Form(""),
    csrf: str = Form(""),
    next: str = Form("/"),
) -> Response:
    ws = request.app.state.ws
    target = safe_next(next)

    def again(error: str, status: int) -> Response:
        value = csrf_token(request) or secrets.token_urlsafe(24)
        page = render(
            request,
            "signin.html",
            {"next": target, "error": error, "csrf": value, "username": username},
            status=status,
        )
        if not csrf_token(request):
            _set_csrf(page, value, request.url.scheme == "https")
        return page

    if not _form_csrf_ok(request, csrf):
        return again("The sign-in form expired; please sign in again.", 403)
    if username.strip():
        try:
            token = (await run_in_threadpool(ws.auth.sign_in, username.strip(), password)).token
        except Unauthenticated:
            return again("Unknown user or wrong password.", 401)
    try:
        principal = ws.auth.authenticate(f"Bearer {token.strip()}")
    except Unauthenticated:
        return again("That token is not valid (or was revoked or expired).", 401)
    response = RedirectResponse(target, status_code=303)
    secure = request.url.scheme == "https"
    response.set_cookie(
        TOKEN_COOKIE,
        token.strip(),
        max_age=MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )
    _set_csrf(response, secrets.token_urlsafe(24), secure)  # a fresh one per session
    request.state.principal = principal
    return response


@router.post("/signout")
async def signout(request: Request, csrf: str = Form("")) -> Response:
    if not _form_csrf_ok(request, csrf):
        return PlainTextResponse(
            "Sign-out needs the page's CSRF token; reload the page and retry.", status_code=403
        )
    token = request.cookies.get(TOKEN_COOKIE)
    if token:  # a session made by password sign-in ends here; a pasted token lives on
        await run_in_threadpool(request.app.state.ws.auth.end_session, token)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response
