"""The audit log: appended in batches, read newest first, never updated or deleted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select

from lapis.store.sql.auth_tables import audit_log as t
from lapis.store.sql.engine import Database

COLUMNS = (
    "time",
    "user_name",
    "user_id",
    "token_id",
    "job",
    "action",
    "method",
    "path",
    "status",
    "allowed",
    "client",
)


class AuditStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        with self.db.write() as conn:
            conn.execute(insert(t), [{k: r.get(k) for k in COLUMNS} for r in rows])

    def query(
        self,
        user: str | None = None,
        since: int | None = None,
        action: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]:
        q = select(t)
        if user:
            q = q.where(func.lower(t.c.user_name) == user.lower())
        if since is not None:
            q = q.where(t.c.time >= since)
        if action:
            pattern = action.replace("*", "%")
            q = q.where(func.lower(t.c.action).like(pattern.lower()))
        if before_id is not None:
            q = q.where(t.c.id < before_id)
        q = q.order_by(t.c.id.desc()).limit(max(1, min(limit, 1000)))
        with self.db.read() as conn:
            return [{str(k): v for k, v in r._mapping.items()} for r in conn.execute(q)]
