"""Users, API tokens and role assignments. Only a SHA-256 of each token is stored,
and a password only as its argon2id hash (made by the auth service)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from lapis.entities.auth import JobScope, Principal, TokenInfo, User
from lapis.errors import ResourceAlreadyExists, ResourceDoesNotExist
from lapis.store.sql.auth_tables import role_assignments, roles
from lapis.store.sql.engine import Database
from lapis.store.sql.tables import tokens, users
from lapis.util import now_ms


class PrincipalStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- users ------------------------------------------------------------------------
    def count_users(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(users)).scalar_one())

    def create_user(
        self,
        user_id: str,
        name: str,
        roles_: list[str],
        created_by: str | None = None,
        password_hash: str | None = None,
        display_name: str | None = None,
    ) -> None:
        now = now_ms()
        try:
            with self.db.write() as conn:
                taken = select(users.c.user_id).where(func.lower(users.c.name) == name.lower())
                if conn.execute(taken).first():
                    raise ResourceAlreadyExists(f"User '{name}' already exists")
                conn.execute(
                    insert(users).values(
                        user_id=user_id,
                        name=name,
                        display_name=display_name,
                        created_at=now,
                        created_by=created_by,
                        password_hash=password_hash,
                    )
                )
                for role in roles_:
                    conn.execute(
                        insert(role_assignments).values(
                            user_id=user_id, role=role, created_by=created_by, created_at=now
                        )
                    )
        except IntegrityError:
            raise ResourceAlreadyExists(f"User '{name}' already exists") from None

    def _roles_of(self, conn: Any, user_ids: list[str]) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {u: [] for u in user_ids}
        rows = conn.execute(
            select(role_assignments.c.user_id, role_assignments.c.role)
            .where(role_assignments.c.user_id.in_(user_ids))
            .order_by(role_assignments.c.created_at, role_assignments.c.role)
        )
        for row in rows:
            out[row.user_id].append(row.role)
        return {u: tuple(r) for u, r in out.items()}

    def _user(self, row: Any, role_names: tuple[str, ...]) -> User:
        return User(
            user_id=row.user_id,
            name=row.name,
            display_name=row.display_name,
            disabled=bool(row.disabled),
            created_at=row.created_at,
            created_by=row.created_by,
            roles=role_names,
            has_password=row.password_hash is not None,
            auth_source=row.auth_source,
        )

    def get_user(self, name: str) -> User:
        with self.db.read() as conn:
            row = conn.execute(
                select(users).where(func.lower(users.c.name) == name.lower())
            ).first()
            if row is None:
                raise ResourceDoesNotExist(f"User '{name}' does not exist")
            return self._user(row, self._roles_of(conn, [row.user_id])[row.user_id])

    def password_hash(self, name: str) -> tuple[User, str | None] | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(users).where(func.lower(users.c.name) == name.lower())
            ).first()
            if row is None:
                return None
            return self._user(row, ()), row.password_hash

    def list_users(self) -> list[User]:
        with self.db.read() as conn:
            rows = conn.execute(select(users).order_by(func.lower(users.c.name))).all()
            by_user = self._roles_of(conn, [r.user_id for r in rows])
            return [self._user(r, by_user[r.user_id]) for r in rows]

    def update_user(self, user_id: str, **values: Any) -> None:
        with self.db.write() as conn:
            conn.execute(update(users).where(users.c.user_id == user_id).values(**values))

    # --- role assignments ----------------------------------------------------------------
    def assign(self, user_id: str, role: str, created_by: str | None) -> bool:
        """False when the user already holds the role."""
        with self.db.write() as conn:
            held = conn.execute(
                select(role_assignments.c.role).where(
                    role_assignments.c.user_id == user_id,
                    func.lower(role_assignments.c.role) == role.lower(),
                )
            ).first()
            if held:
                return False
            conn.execute(
                insert(role_assignments).values(
                    user_id=user_id, role=role, created_by=created_by, created_at=now_ms()
                )
            )
            return True

    def unassign(self, user_id: str, role: str) -> bool:
        with self.db.write() as conn:
            done = conn.execute(
                delete(role_assignments).where(
                    role_assignments.c.user_id == user_id,
                    func.lower(role_assignments.c.role) == role.lower(),
                )
            )
            return bool(done.rowcount)

    def holders(self, role: str) -> list[str]:
        """User names holding ``role`` (enabled users only)."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(users.c.name)
                .join(role_assignments, role_assignments.c.user_id == users.c.user_id)
                .where(func.lower(role_assignments.c.role) == role.lower())
                .where(users.c.disabled.is_(False))
            )
            return [r.name for r in rows]

    # --- custom roles --------------------------------------------------------------------
    def insert_role(
        self,
        name: str,
        description: str,
        actions: list[str],
        not_actions: list[str],
        created_by: str | None,
    ) -> None:
        try:
            with self.db.write() as conn:
                conn.execute(
                    insert(roles).values(
                        name=name,
                        name_lower=name.lower(),
                        description=description,
                        actions=json.dumps(actions),
                        not_actions=json.dumps(not_actions),
                        created_by=created_by,
                        created_at=now_ms(),
                    )
                )
        except IntegrityError:
            raise ResourceAlreadyExists(f"Role '{name}' already exists") from None

    def custom_roles(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(select(roles).order_by(roles.c.name_lower)).all()
        return [
            {
                "name": r.name,
                "description": r.description or "",
                "actions": json.loads(r.actions),
                "not_actions": json.loads(r.not_actions),
                "created_by": r.created_by,
            }
            for r in rows
        ]

    def delete_role(self, name: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                delete(role_assignments).where(func.lower(role_assignments.c.role) == name.lower())
            )
            conn.execute(delete(roles).where(roles.c.name_lower == name.lower()))

    # --- tokens --------------------------------------------------------------------------
    def add_token(
        self,
        token_id: str,
        user_id: str,
        name: str,
        token_hash: str,
        expires_at: int | None = None,
        scope: JobScope | None = None,
    ) -> None:
        with self.db.write() as conn:
            conn.execute(
                insert(tokens).values(
                    token_id=token_id,
                    user_id=user_id,
                    name=name,
                    token_hash=token_hash,
                    created_at=now_ms(),
                    expires_at=expires_at,
                    scope=None
                    if scope is None
                    else json.dumps(
                        {
                            "job": scope.job,
                            "run_id": scope.run_id,
                            "experiment_id": scope.experiment_id,
                        }
                    ),
                )
            )

    def revoke_hash(self, token_hash: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(tokens).where(tokens.c.token_hash == token_hash).values(revoked=True)
            )

    def revoke_job_tokens(self, job: str) -> int:
        """Revoke the tokens issued to one job (scoped to it; a user's own token never)."""
        with self.db.write() as conn:
            rows = conn.execute(
                select(tokens.c.token_id, tokens.c.scope).where(
                    tokens.c.name == f"job {job}",
                    tokens.c.scope.is_not(None),
                    tokens.c.revoked.is_(False),
                )
            ).all()
            ids = [r.token_id for r in rows if json.loads(r.scope).get("job") == job]
            if ids:
                conn.execute(update(tokens).where(tokens.c.token_id.in_(ids)).values(revoked=True))
        return len(ids)

    def revoke_id(self, token_id: str) -> TokenInfo:
        with self.db.write() as conn:
            done = conn.execute(
                update(tokens).where(tokens.c.token_id == token_id).values(revoked=True)
            )
        if not done.rowcount:
            raise ResourceDoesNotExist(f"Token '{token_id}' does not exist")
        return self.list_tokens(token_id=token_id, include_revoked=True)[0]

    def list_tokens(
        self,
        user_id: str | None = None,
        token_id: str | None = None,
        include_revoked: bool = False,
    ) -> list[TokenInfo]:
        query = select(tokens, users.c.name.label("user_name")).join(
            users, users.c.user_id == tokens.c.user_id
        )
        if user_id is not None:
            query = query.where(tokens.c.user_id == user_id)
        if token_id is not None:
            query = query.where(tokens.c.token_id == token_id)
        if not include_revoked:
            query = query.where(tokens.c.revoked.is_(False))
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(tokens.c.created_at)).all()
        return [
            TokenInfo(
                token_id=r.token_id,
                user=r.user_name,
                name=r.name,
                created_at=r.created_at,
                expires_at=r.expires_at,
                revoked=bool(r.revoked),
                job=json.loads(r.scope)["job"] if r.scope else None,
            )
            for r in rows
        ]

    def principal_for_hash(self, token_hash: str) -> Principal | None:
        now = now_ms()
        with self.db.read() as conn:
            row = conn.execute(
                select(
                    users.c.user_id,
                    users.c.name,
                    tokens.c.token_id,
                    tokens.c.scope,
                    tokens.c.expires_at,
                )
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
            held = self._roles_of(conn, [row.user_id])[row.user_id]
        scope = None
        if row.scope:
            data = json.loads(row.scope)
            scope = JobScope(str(data["job"]), str(data["run_id"]), str(data["experiment_id"]))
        return Principal(
            user_id=row.user_id,
            name=row.name,
            roles=held,
            token_id=row.token_id,
            job=scope,
            expires_at=row.expires_at,
        )
