"""Admin and account pages: users and their roles, roles, the audit log, one's own tokens.

Owners see and change everything here; others see what their roles let them
read (a Reader sees the roles page, nobody without ``workspaces/audit/read``
sees the log) and the buttons they may not use are not shown. Every change
goes through the same auth service the API uses, which refuses it anyway.
Forms post with htmx (so the CSRF header is sent) and re-render their part of
the page; a new token's secret is shown once, in that answer.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.errors import LapisError
from lapis.server.studio.web import render

router = APIRouter(include_in_schema=False)


def _auth(request: Request) -> Any:
    return request.app.state.ws.auth


def _me(request: Request) -> Any:
    return request.state.principal


async def _users_view(request: Request, **extra: Any) -> Response:
    auth = _auth(request)
    users = await run_in_threadpool(auth.users, _me(request))
    roles = [r.name for r in await run_in_threadpool(auth.roles)]
    ctx = {"users": users, "roles": roles, **extra}
    name = "admin/_users.html" if request.headers.get("hx-request") else "admin/users.html"
    return render(request, name, ctx, section="admin")


@router.get("/admin/users")
async def users_page(request: Request) -> Response:
    return await _users_view(request)


@router.post("/admin/users")
async def create_user(
    request: Request,
    name: str = Form(""),
    role: list[str] = Form(default_factory=list),
    password: str = Form(""),
) -> Response:
    try:
        user = await run_in_threadpool(
            _auth(request).create_user, _me(request), name.strip(), role, password or None
        )
    except LapisError as exc:
        return await _users_view(request, error=exc.message)
    return await _users_view(request, flash=f"Created user {user.name}.")


@router.post("/admin/users/{name}/{verb}")
async def change_user(request: Request, name: str, verb: str, role: str = Form("")) -> Response:
    """``disable``/``enable`` a user, or ``assign``/``unassign`` the posted role."""
    auth, me = _auth(request), _me(request)
    try:
        if verb in ("disable", "enable"):
            await run_in_threadpool(auth.set_disabled, me, name, verb == "disable")
            done = f"{name} {verb}d."
        elif verb in ("assign", "unassign"):
            await run_in_threadpool(getattr(auth, verb), me, name, role)
            done = f"{role} {'given to' if verb == 'assign' else 'taken from'} {name}."
        else:
            return await _users_view(request, error=f"Unknown change '{verb}'")
    except LapisError as exc:
        return await _users_view(request, error=exc.message)
    return await _users_view(request, flash=done)


@router.get("/admin/roles")
async def roles_page(request: Request) -> Response:
    auth = _auth(request)

    def gather() -> list[dict[str, Any]]:
        return [
            {"role": r, "allows": r.allowed_actions(), "holders": auth.holders(r.name)}
            for r in auth.roles()
        ]

    return render(
        request, "admin/roles.html", {"roles": await run_in_threadpool(gather)}, section="admin"
    )


@router.post("/admin/roles")
async def roles_assign(request: Request, user: str = Form(""), role: str = Form("")) -> Response:
    try:
        await run_in_threadpool(_auth(request).assign, _me(request), user, role)
    except LapisError as exc:
        return render(request, "admin/_flash.html", {"error": exc.message})
    return render(request, "admin/_flash.html", {"flash": f"{role} given to {user}."})


@router.get("/admin/audit")
async def audit_page(
    request: Request, user: str = "", action: str = "", hours: int = 24, limit: int = 200
) -> Response:
    ws = request.app.state.ws
    since = int(time.time() * 1000) - max(1, hours) * 3_600_000
    rows = await run_in_threadpool(ws.audit.query, user or None, since, action or None, limit)
    ctx = {"rows": rows, "user": user, "action": action, "hours": hours}
    return render(request, "admin/audit.html", ctx, section="admin")


# --- one's own account ----------------------------------------------------------------------
async def _account_view(request: Request, **extra: Any) -> Response:
    tokens = await run_in_threadpool(_auth(request).tokens, _me(request))
    ctx = {"tokens": tokens, **extra}
    name = "admin/_tokens.html" if request.headers.get("hx-request") else "admin/account.html"
    return render(request, name, ctx)


@router.get("/account")
async def account_page(request: Request) -> Response:
    return await _account_view(request)


@router.post("/account/tokens")
async def account_new_token(
    request: Request, name: str = Form("studio"), days: int = Form(30)
) -> Response:
    try:
        issued = await run_in_threadpool(
            _auth(request).create_token,
            _me(request),
            name.strip(),
            None,
            days * 86_400_000 if days > 0 else None,
        )
    except LapisError as exc:
        return await _account_view(request, error=exc.message)
    return await _account_view(request, issued=issued)


@router.post("/account/tokens/{token_id}/revoke")
async def account_revoke(request: Request, token_id: str) -> Response:
    try:
        info = await run_in_threadpool(_auth(request).revoke_token, _me(request), token_id)
    except LapisError as exc:
        return await _account_view(request, error=exc.message)
    return await _account_view(request, flash=f"Token {info.name} revoked.")
