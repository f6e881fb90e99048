"""Users and API tokens. Only a SHA-256 of each token is stored."""

from __future__ import annotations

from sqlalchemy import func, insert, select, update

from lapis.entities.auth import Principal
from lapis.errors import ResourceAlreadyExists
from lapis.store.sql.engine import Database
from lapis.store.sql.tables import tokens, users
from lapis.util import now_ms


class PrincipalStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def count_users(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(users)).scalar_one())

    def create_user(self, user_id: str, name: str, role: str) -> None:
        with self.db.write() as conn:
            if conn.execute(select(users.c.user_id).where(users.c.name == name)).first():
                raise ResourceAlreadyExists(f"User '{name}' already exists")
            conn.execute(
                insert(users).values(user_id=user_id, name=name, role=role, created_at=now_ms())
            )

    def add_token(self, token_id: str, user_id: str, name: str, token_hash: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                insert(tokens).values(
                    token_id=token_id,
                    user_id=user_id,
                    name=name,
                    token_hash=token_hash,
                    created_at=now_ms(),
                )
            )

    def revoke_hash(self, token_hash: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(tokens).where(tokens.c.token_hash == token_hash).values(revoked=True)
            )

    def principal_for_hash(self, token_hash: str) -> Principal | None:
        now = now_ms()
        with self.db.read() as conn:
            row = conn.execute(
                select(users.c.user_id, users.c.name, users.c.role, tokens.c.token_id)
                .join(tokens, tokens.c.user_id == users.c.user_id)
                .where(
                    tokens.c.token_hash == token_hash,
                    tokens.c.revoked.is_(False),
                    users.c.disabled.is_(False),
                    (tokens.c.expires_at.is_(None)) | (tokens.c.expires_at > now),
                )
            ).first()
        if row is None:
            return None
        return Principal(user_id=row.user_id, name=row.name, role=row.role, token_id=row.token_id)
