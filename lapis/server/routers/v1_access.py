"""Users, tokens, roles, role assignments and the audit log under ``/api/v1``.

Who may call what is in :mod:`lapis.server.permissions`; rules that depend on
the target (your own token or someone else's, the last Owner) are the auth
service's. A token's secret appears in exactly one response — the one that
created it.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.api import access as a
from lapis.auth.actions import ACTIONS
from lapis.auth.service import AuthService, IssuedToken
from lapis.entities.auth import Principal, TokenInfo, User
from lapis.errors import InvalidParameterValue
from lapis.server.body import json_object
from lapis.server.routers.mlflow._handler import json_response

router = APIRouter(prefix="/api/v1", tags=["access"])


def _auth(request: Request) -> AuthService:
    auth: AuthService = request.app.state.ws.auth
    return auth


def _me(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


def user_dict(u: User) -> dict[str, Any]:
    return asdict(u) | {"roles": list(u.roles)}


def token_dict(t: TokenInfo) -> dict[str, Any]:
    return asdict(t)


def issued_dict(t: IssuedToken) -> dict[str, Any]:
    return {"user": t.user, "token": t.token, "token_id": t.token_id, "expires_at": t.expires_at}


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidParameterValue(f"'{key}' must be a non-empty string", field=key)
    return value


def _opt(body: dict[str, Any], key: str) -> str | None:
    return None if body.get(key) is None else _str(body, key)


def _seconds(body: dict[str, Any]) -> int | None:
    value = body.get("expires_in_seconds")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidParameterValue(
            "'expires_in_seconds' must be a positive whole number", field="expires_in_seconds"
        )
    return int(value) * 1000


# --- users --------------------------------------------------------------------------------
@router.get("/users", status_code=200, responses={200: {"model": a.UserList}})
async def list_users(request: Request) -> Response:
    users = await run_in_threadpool(_auth(request).users, _me(request))
    return json_response({"users": [user_dict(u) for u in users]})


@router.post("/users", status_code=201, responses={201: {"model": a.UserOut}})
async def create_user(request: Request) -> Response:
    """A user with roles and, optionally, a password for the studio's sign-in."""
    body = await json_object(request)
    roles = body.get("roles") or []
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InvalidParameterValue("'roles' must be a list of role names", field="roles")
    user = await run_in_threadpool(
        _auth(request).create_user,
        _me(request),
        _str(body, "name"),
        roles,
        _opt(body, "password"),
        _opt(body, "display_name"),
    )
    return json_response(user_dict(user), status=201)


@router.get("/users/{name}", status_code=200, responses={200: {"model": a.UserOut}})
async def get_user(request: Request, name: str) -> Response:
    user = await run_in_threadpool(_auth(request).user, _me(request), name)
    return json_response(user_dict(user))


@router.post("/users/{name}/disable", status_code=200, responses={200: {"model": a.UserOut}})
async def disable_user(request: Request, name: str) -> Response:
    """Disabled users' tokens stop working at once."""
    user = await run_in_threadpool(_auth(request).set_disabled, _me(request), name, True)
    return json_response(user_dict(user))


@router.post("/users/{name}/enable", status_code=200, responses={200: {"model": a.UserOut}})
async def enable_user(request: Request, name: str) -> Response:
    user = await run_in_threadpool(_auth(request).set_disabled, _me(request), name, False)
    return json_response(user_dict(user))


@router.post("/users/{name}/password", status_code=200, responses={200: {"model": a.Done}})
async def set_password(request: Request, name: str) -> Response:
    body = await json_object(request)
    password = _str(body, "password")
    await run_in_threadpool(_auth(request).set_password, _me(request), name, password)
    return json_response({"name": name, "password_set": True})


# --- tokens --------------------------------------------------------------------------------
@router.get("/tokens", status_code=200, responses={200: {"model": a.TokenList}})
async def list_tokens(request: Request, user: str | None = None) -> Response:
    """Your tokens; ``?user=NAME`` (or ``*``) for others' with workspaces/users/read."""
    found = await run_in_threadpool(_auth(request).tokens, _me(request), user)
    return json_response({"tokens": [token_dict(t) for t in found]})


@router.post("/tokens", status_code=201, responses={201: {"model": a.IssuedTokenOut}})
async def create_token(request: Request) -> Response:
    """A new token, shown in this response only; for another user with users/write."""
    body = await json_object(request)
    issued = await run_in_threadpool(
        _auth(request).create_token,
        _me(request),
        _str(body, "name"),
        _opt(body, "user"),
        _seconds(body),
    )
    return json_response(issued_dict(issued), status=201)


@router.post("/tokens/rotate", status_code=201, responses={201: {"model": a.IssuedTokenOut}})
async def rotate_token(request: Request) -> Response:
    """Replace the calling token: a new one (same name and lifetime) now, this one revoked."""
    issued = await run_in_threadpool(_auth(request).rotate, _me(request))
    return json_response(issued_dict(issued), status=201)


@router.post("/tokens/{token_id}/revoke", status_code=200, responses={200: {"model": a.TokenOut}})
async def revoke_token(request: Request, token_id: str) -> Response:
    info = await run_in_threadpool(_auth(request).revoke_token, _me(request), token_id)
    return json_response(token_dict(info))


# --- roles ---------------------------------------------------------------------------------
@router.get("/actions", status_code=200, responses={200: {"model": a.ActionList}})
async def list_actions(request: Request) -> Response:
    """The action catalog custom roles are written against."""
    return json_response({"actions": [{"action": a, "description": d} for a, d in ACTIONS.items()]})


@router.get("/roles", status_code=200, responses={200: {"model": a.RoleList}})
async def list_roles(request: Request) -> Response:
    roles = await run_in_threadpool(_auth(request).roles)
    return json_response({"roles": [r.to_dict() for r in roles]})


@router.post("/roles", status_code=201, responses={201: {"model": a.RoleOut}})
async def create_role(request: Request) -> Response:
    """A custom role from its YAML/JSON text (``{"yaml": ..., "source": "role.yml"}``)."""
    body = await json_object(request)
    text = _str(body, "yaml")
    role = await run_in_threadpool(
        _auth(request).create_role, _me(request), text, str(body.get("source") or "<role>")
    )
    return json_response(role.to_dict(), status=201)


@router.get("/roles/{name}", status_code=200, responses={200: {"model": a.RoleDetail}})
async def get_role(request: Request, name: str) -> Response:
    role = await run_in_threadpool(_auth(request).role, name)
    holders = await run_in_threadpool(_auth(request).holders, role.name)
    return json_response(
        role.to_dict() | {"allowed_actions": role.allowed_actions(), "assigned_to": holders}
    )


@router.delete("/roles/{name}", status_code=200, responses={200: {"model": a.Done}})
async def delete_role(request: Request, name: str) -> Response:
    await run_in_threadpool(_auth(request).delete_role, _me(request), name)
    return json_response({"name": name, "deleted": True})


@router.post("/roleAssignments", status_code=201, responses={201: {"model": a.UserOut}})
async def assign_role(request: Request) -> Response:
    body = await json_object(request)
    user = await run_in_threadpool(
        _auth(request).assign, _me(request), _str(body, "user"), _str(body, "role")
    )
    return json_response(user_dict(user), status=201)


@router.delete("/roleAssignments", status_code=200, responses={200: {"model": a.UserOut}})
async def unassign_role(request: Request, user: str, role: str) -> Response:
    found = await run_in_threadpool(_auth(request).unassign, _me(request), user, role)
    return json_response(user_dict(found))


# --- audit ---------------------------------------------------------------------------------
@router.get("/audit", status_code=200, responses={200: {"model": a.AuditList}})
async def list_audit(
    request: Request,
    user: str | None = None,
    since: int | None = None,
    action: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> Response:
    """Writes newest first; ``since`` is epoch ms, ``action`` may hold ``*``."""
    ws = request.app.state.ws
    rows = await run_in_threadpool(ws.audit.query, user, since, action, limit, before_id)
    return json_response({"entries": rows})
