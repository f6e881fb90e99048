"""Wire models of the access-control routes (``/api/v1/users|tokens|roles|audit``).

They document the answers in /openapi.json, so clients and the fuzzer can
check response bodies; the routes build the same shapes from the entities.
"""

from __future__ import annotations

from pydantic import BaseModel


class UserOut(BaseModel):
    user_id: str
    name: str
    display_name: str | None
    disabled: bool
    created_at: int
    created_by: str | None
    roles: list[str]
    has_password: bool
    auth_source: str


class UserList(BaseModel):
    users: list[UserOut]


class TokenOut(BaseModel):
    """A token's record; the secret itself is never listed."""

    token_id: str
    user: str
    name: str
    created_at: int
    expires_at: int | None
    revoked: bool
    job: str | None


class TokenList(BaseModel):
    tokens: list[TokenOut]


class IssuedTokenOut(BaseModel):
    """A new token: ``token`` appears in this answer only."""

    user: str
    token: str
    token_id: str
    expires_at: int | None


class RoleOut(BaseModel):
    name: str
    description: str
    actions: list[str]
    not_actions: list[str]
    builtin: bool
    created_by: str | None


class RoleDetail(RoleOut):
    allowed_actions: list[str]
    assigned_to: list[str]


class RoleList(BaseModel):
    roles: list[RoleOut]


class ActionOut(BaseModel):
    action: str
    description: str


class ActionList(BaseModel):
    actions: list[ActionOut]


class AuditEntry(BaseModel):
    id: int
    time: int
    user_name: str | None
    user_id: str | None
    token_id: str | None
    job: str | None
    action: str
    method: str
    path: str
    status: int
    allowed: bool
    client: str | None


class AuditList(BaseModel):
    entries: list[AuditEntry]


class Done(BaseModel):
    name: str
    deleted: bool | None = None
    password_set: bool | None = None
