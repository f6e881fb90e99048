"""Token issue and verification.

Tokens are random, shown once, and stored only as a SHA-256 digest: a stolen
database does not let anyone call the API. Verification results are cached
for a few seconds because every request pays for it; a revoked token stops
working within that window.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass

from lapis.entities.auth import Principal, Role
from lapis.errors import Unauthenticated
from lapis.store.sql.principals import PrincipalStore

TOKEN_PREFIX = "lapis_"
_CACHE_SECONDS = 5.0


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    user: str
    token: str


class AuthService:
    def __init__(self, store: PrincipalStore) -> None:
        self.store = store
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def bootstrap_admin(self) -> IssuedToken | None:
        """Create the first admin and a token when the workspace has no users yet."""
        if self.store.count_users() > 0:
            return None
        user_id = uuid.uuid4().hex
        self.store.create_user(user_id, "admin", Role.ADMIN.value)
        return IssuedToken(user="admin", token=self.issue_token(user_id, "bootstrap"))

    def issue_token(self, user_id: str, name: str) -> str:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.store.add_token(uuid.uuid4().hex, user_id, name, hash_token(token))
        return token

    def revoke(self, token: str) -> None:
        """Make a token useless at once (a finished job's token, for example)."""
        digest = hash_token(token)
        self.store.revoke_hash(digest)
        with self._lock:
            self._cache.pop(digest, None)

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
            raise Unauthenticated("Invalid or revoked token")
        with self._lock:
            self._cache[digest] = (now + _CACHE_SECONDS, principal)
        return principal
