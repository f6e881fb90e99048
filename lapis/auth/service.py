"""Users, tokens, roles and the one place an action is allowed or refused.

Tokens are random, shown once, and stored only as a SHA-256 digest: a stolen
database does not let anyone call the API. Verification results are cached for
a few seconds because every request pays for it; anything that narrows what a
token may do (revoke, disable a user, unassign a role, delete a role) empties
the cache, so it takes effect at once.

Authorization (:meth:`AuthService.authorize`) is decided here and nowhere
else: a person may do what one of their roles allows
(:mod:`lapis.auth.roles`); a job's token may do only what :data:`JOB_ACTIONS`
lists *and* its submitter's roles allow — its reach to one run is checked by
the server with :func:`lapis.auth.reach.check_job_reach`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lapis.auth.actions import ACTIONS, SELF, normalize
from lapis.auth.roles import BUILTIN, RoleDefinition, parse_role
from lapis.entities.auth import JobScope, Principal, TokenInfo, User
from lapis.errors import (
    InvalidParameterValue,
    InvalidState,
    PermissionDenied,
    ResourceDoesNotExist,
    Unauthenticated,
)
from lapis.store.sql.principals import PrincipalStore
from lapis.util import now_ms

TOKEN_PREFIX = "lapis_"
_CACHE_SECONDS = 5.0
DAY_MS = 86_400_000
BOOTSTRAP_TOKEN_DAYS = 90
SIGN_IN_HOURS = 12
MIN_PASSWORD = 8
SESSION_TOKEN = "studio sign-in"

# What a job's token may ever do (further narrowed by its submitter's roles and, for
# runs and artifacts, to the job's own run): log to its run, read its experiment,
# register models as its submitter.
JOB_ACTIONS = frozenset(
    {
        "workspaces/read",
        "workspaces/experiments/read",
        "workspaces/experiments/runs/read",
        "workspaces/experiments/runs/write",
        "workspaces/models/read",
        "workspaces/models/write",
    }
)


_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@\-]{0,63}$")


def check_user_name(name: object) -> str:
    """User names: 1-64 letters, digits, '.', '_', '-', '@', starting with a letter or
    digit (an e-mail address fits, so a later single sign-on can map to it)."""
    if not isinstance(name, str) or not _USER_NAME.match(name):
        raise InvalidParameterValue(
            f"Invalid user name {name!r}: 1 to 64 letters, digits, '.', '_', '-' or '@', "
            "starting with a letter or digit",
            field="name",
        )
    return name


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


if TYPE_CHECKING:
    from argon2 import PasswordHasher


def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()


@dataclass(frozen=True)
class IssuedToken:
    user: str
    token: str
    token_id: str = ""
    expires_at: int | None = None


class AuthService:
    def __init__(self, store: PrincipalStore) -> None:
        self.store = store
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()
        self._roles: dict[str, RoleDefinition] | None = None

    def _forget_cached(self) -> None:
        with self._lock:
            self._cache.clear()

    # --- bootstrap and tokens -------------------------------------------------------
    def bootstrap_admin(self, days: int = BOOTSTRAP_TOKEN_DAYS) -> IssuedToken | None:
        """Create the first Owner and a token when the workspace has no users yet."""
        if self.store.count_users() > 0:
            return None
        user_id = uuid.uuid4().hex
        self.store.create_user(user_id, "admin", ["Owner"], created_by="bootstrap")
        return self.issue(user_id, "admin", "bootstrap", expires_in_ms=days * DAY_MS)

    def issue(
        self,
        user_id: str,
        user_name: str,
        name: str,
        expires_in_ms: int | None = None,
        scope: JobScope | None = None,
    ) -> IssuedToken:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = uuid.uuid4().hex
        expires = now_ms() + expires_in_ms if expires_in_ms else None
        self.store.add_token(token_id, user_id, name, hash_token(token), expires, scope)
        return IssuedToken(user_name, token, token_id, expires)

    def issue_job_token(self, user_id: str, scope: JobScope) -> str:
        """A token that reaches only the job's own run (revoked when the job ends)."""
        return self.issue(user_id, "", f"job {scope.job}", scope=scope).token

    def revoke(self, token: str) -> None:
        """Make a token useless at once (a finished job's token, for example)."""
        self.store.revoke_hash(hash_token(token))
        self._forget_cached()

    def revoke_job_tokens(self, job: str) -> None:
        """The job's tokens die with the job: leftover children cannot write to its run."""
        if self.store.revoke_job_tokens(job):
            self._forget_cached()

    def tokens(self, principal: Principal, user: str | None = None) -> list[TokenInfo]:
        """Own tokens; someone else's with ``workspaces/users/read``; all with user='*'."""
        if user is None:
            return self.store.list_tokens(user_id=principal.user_id)
        self.authorize(principal, "workspaces/users/read")
        if user == "*":
            return self.store.list_tokens()
        return self.store.list_tokens(user_id=self.store.get_user(user).user_id)

    def create_token(
        self, principal: Principal, name: str, user: str | None, expires_in_ms: int | None
    ) -> IssuedToken:
        if not name or len(name) > 256:
            raise InvalidParameterValue("A token needs a name of 1 to 256 characters")
        if expires_in_ms is not None and expires_in_ms <= 0:
            raise InvalidParameterValue("expires_in must be positive")
        if principal.job is not None:
            raise PermissionDenied("A job's token cannot create tokens")
        if user is None or user.lower() == principal.name.lower():
            return self.issue(principal.user_id, principal.name, name, expires_in_ms)
        self.authorize(principal, "workspaces/users/write")
        target = self.store.get_user(user)
        if target.disabled:
            raise InvalidState(f"User '{target.name}' is disabled")
        return self.issue(target.user_id, target.name, name, expires_in_ms)

    def rotate(self, principal: Principal) -> IssuedToken:
        """A new token for the caller, same name and lifetime; the calling one is revoked."""
        if principal.job is not None or principal.token_id is None:
            raise PermissionDenied("Only a person's token can be rotated")
        old = self.store.list_tokens(token_id=principal.token_id)[0]
        lifetime = old.expires_at - old.created_at if old.expires_at else None
        issued = self.issue(principal.user_id, principal.name, old.name, lifetime)
        self.store.revoke_id(principal.token_id)
        self._forget_cached()
        return issued

    def revoke_token(self, principal: Principal, token_id: str) -> TokenInfo:
        found = self.store.list_tokens(token_id=token_id, include_revoked=True)
        if not found:
            raise ResourceDoesNotExist(f"Token '{token_id}' does not exist")
        if found[0].user.lower() != principal.name.lower():
            self.authorize(principal, "workspaces/users/write")
        info = self.store.revoke_id(token_id)
        self._forget_cached()
        return info

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthenticated(
                "Missing bearer token: send 'Authorization: Bearer <token>' "
                "(`lapis auth token` prints yours; the mlflow client reads MLFLOW_TRACKING_TOKEN)"
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("Authorization header must be 'Bearer <token>'")
        digest = hash_token(token.strip())
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = self.store.principal_for_hash(digest)
        if principal is None:
            raise Unauthenticated("Invalid, expired or revoked token")
        until = now + _CACHE_SECONDS
        if principal.expires_at is not None:  # an expiring token is not cached past its end
            until = min(until, now + (principal.expires_at - now_ms()) / 1000)
        with self._lock:
            self._cache[digest] = (until, principal)
        return principal

    # --- passwords -------------------------------------------------------------------
    def sign_in(self, name: str, password: str) -> IssuedToken:
        """A session token for the studio (12 h) when the password matches."""
        from argon2.exceptions import InvalidHashError, VerificationError

        found = self.store.password_hash(name)
        refused = Unauthenticated("Unknown user or wrong password")
        if found is None or found[1] is None:
            _hasher().hash(password)  # same time whether or not the user exists
            raise refused
        user, stored = found
        assert stored is not None  # checked above
        try:
            _hasher().verify(stored, password)
        except (VerificationError, InvalidHashError):
            raise refused from None
        if user.disabled:
            raise refused
        return self.issue(user.user_id, user.name, SESSION_TOKEN, SIGN_IN_HOURS * 3_600_000)

    def end_session(self, token: str) -> None:
        """Revoke a studio sign-in token (a pasted API token is left alone)."""
        try:
            principal = self.authenticate(f"Bearer {token}")
        except Unauthenticated:
            return
        if principal.token_id is None:
            return
        found = self.store.list_tokens(token_id=principal.token_id)
        if found and found[0].name == SESSION_TOKEN:
            self.store.revoke_id(principal.token_id)
            self._forget_cached()

    @staticmethod
    def _password_hash(password: str | None) -> str | None:
        if password is None:
            return None
        if len(password) < MIN_PASSWORD:
            raise InvalidParameterValue(f"A password needs at least {MIN_PASSWORD} characters")
        return str(_hasher().hash(password))

    # --- users -----------------------------------------------------------------------
    def create_user(
        self,
        principal: Principal,
        name: str,
        roles: list[str],
        password: str | None = None,
        display_name: str | None = None,
    ) -> User:
        self.authorize(principal, "workspaces/users/write")
        check_user_name(name)
        held = [self.role(r).name for r in roles]
        if held:
            self.authorize(principal, "workspaces/roleAssignments/write")
        self.store.create_user(
            uuid.uuid4().hex,
            name,
            held,
            created_by=principal.name,
            password_hash=self._password_hash(password),
            display_name=display_name,
        )
        return self.store.get_user(name)

    def users(self, principal: Principal) -> list[User]:
        self.authorize(principal, "workspaces/users/read")
        return self.store.list_users()

    def user(self, principal: Principal, name: str) -> User:
        if name.lower() != principal.name.lower():
            self.authorize(principal, "workspaces/users/read")
        return self.store.get_user(name)

    def set_disabled(self, principal: Principal, name: str, disabled: bool) -> User:
        self.authorize(principal, "workspaces/users/write")
        user = self.store.get_user(name)
        if disabled and user.user_id == principal.user_id:
            raise InvalidState("You cannot disable yourself")
        if disabled and self._last_owner(user):
            raise InvalidState(f"'{user.name}' is the last enabled Owner; assign another first")
        self.store.update_user(user.user_id, disabled=disabled)
        self._forget_cached()
        return self.store.get_user(name)

    def set_password(self, principal: Principal, name: str, password: str) -> None:
        user = self.store.get_user(name)
        if user.user_id != principal.user_id:
            self.authorize(principal, "workspaces/users/write")
        if principal.job is not None:
            raise PermissionDenied("A job's token cannot change passwords")
        self.store.update_user(user.user_id, password_hash=self._password_hash(password))

    def _last_owner(self, user: User) -> bool:
        owners = self.store.holders("Owner")
        return "owner" in {r.lower() for r in user.roles} and owners == [user.name]

    # --- roles -----------------------------------------------------------------------
    def _definitions(self) -> dict[str, RoleDefinition]:
        if self._roles is None:
            custom = {
                r["name"].lower(): RoleDefinition(
                    r["name"],
                    r["description"],
                    tuple(r["actions"]),
                    tuple(r["not_actions"]),
                    created_by=r["created_by"],
                )
                for r in self.store.custom_roles()
            }
            self._roles = {**custom, **BUILTIN}
        return self._roles

    def role(self, name: str) -> RoleDefinition:
        found = self._definitions().get(name.strip().lower())
        if found is None:
            known = ", ".join(r.name for r in self.roles())
            raise ResourceDoesNotExist(f"Role '{name}' does not exist; roles: {known}")
        return found

    def roles(self) -> list[RoleDefinition]:
        defs = self._definitions().values()
        return sorted(defs, key=lambda r: (not r.builtin, r.name.lower()))

    def holders(self, role: str) -> list[str]:
        """The users a role is assigned to."""
        return self.store.holders(role)

    def user_name(self, name: str) -> str:
        """A user's name as stored (names are case-insensitive); 404 when there is none."""
        return self.store.get_user(name).name

    def create_role(self, principal: Principal, text: str, source: str) -> RoleDefinition:
        self.authorize(principal, "workspaces/roles/write")
        role = parse_role(text, source)
        self.store.insert_role(
            role.name, role.description, list(role.actions), list(role.not_actions), principal.name
        )
        self._roles = None
        return self.role(role.name)

    def delete_role(self, principal: Principal, name: str) -> None:
        self.authorize(principal, "workspaces/roles/write")
        role = self.role(name)
        if role.builtin:
            raise InvalidState(f"'{role.name}' is a built-in role and cannot be deleted")
        self.store.delete_role(role.name)
        self._roles = None
        self._forget_cached()

    def assign(self, principal: Principal, user: str, role: str) -> User:
        self.authorize(principal, "workspaces/roleAssignments/write")
        target = self.store.get_user(user)
        self.store.assign(target.user_id, self.role(role).name, principal.name)
        self._forget_cached()
        return self.store.get_user(user)

    def unassign(self, principal: Principal, user: str, role: str) -> User:
        self.authorize(principal, "workspaces/roleAssignments/write")
        target = self.store.get_user(user)
        definition = self.role(role)
        if definition.name == "Owner" and self.store.holders("Owner") == [target.name]:
            raise InvalidState(f"'{target.name}' is the last Owner; assign another first")
        if not self.store.unassign(target.user_id, definition.name):
            raise ResourceDoesNotExist(f"User '{target.name}' does not hold role '{role}'")
        self._forget_cached()
        return self.store.get_user(user)

    # --- the decision ----------------------------------------------------------------
    def acting_as(self, name: str, action: str) -> Principal:
        """The user ``name`` as a principal, for work the server does on their behalf later
        (a schedule's jobs, a pipeline's steps): refused when they are gone, disabled or no
        longer allowed ``action``."""
        try:
            user = self.store.get_user(name)
        except ResourceDoesNotExist:
            raise PermissionDenied(f"{name} no longer exists") from None
        if user.disabled:
            raise PermissionDenied(f"{name} is disabled")
        principal = Principal(user_id=user.user_id, name=user.name, roles=user.roles)
        if not self.can(principal, action):
            raise PermissionDenied(f"{name} may no longer do {action}")
        return principal

    def can(self, principal: Principal, action: str) -> bool:
        if action == SELF:
            return True
        action = normalize(action)
        if principal.job is not None and action not in JOB_ACTIONS:
            return False
        defs = self._definitions()
        return any(defs[r.lower()].allows(action) for r in principal.roles if r.lower() in defs)

    def authorize(self, principal: Principal, action: str) -> None:
        if self.can(principal, action):
            return
        what = ACTIONS.get(normalize(action), action)
        if principal.job is not None:
            raise PermissionDenied(
                f"The token of job {principal.job.job} may not {what} ({action}); a job's "
                "token reaches only its own run and registers models as its submitter"
            )
        roles = ", ".join(principal.roles) or "no role"
        raise PermissionDenied(
            f"{principal.name} may not {what}: the action {action} is not allowed by "
            f"their roles ({roles})"
        )
