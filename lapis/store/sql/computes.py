"""Compute instances and their state history.

Every state change is one transaction that updates the row and appends a
``compute_events`` row, so the history can never disagree with the state.
Names are unique case-insensitively through ``name_lower``; the row keeps the
spelling the user chose.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from lapis.entities.compute import Compute
from lapis.entities.sizes import BY_NAME
from lapis.errors import ResourceAlreadyExists
from lapis.store.sql.engine import Database
from lapis.store.sql.tables import compute_events, computes


def _from_row(row: Any) -> Compute:
    size = BY_NAME.get((row.size or "").lower())
    return Compute(
        name=row.name,
        type=row.type,
        state=row.state,
        cores=size.cores if size else 0,
        memory_gib=size.memory_gib if size else 0.0,
        size=size.name if size else row.size,
        gpus=size.gpus if size else 0,
        family=size.family if size else None,
        state_reason=row.state_reason,
        description=row.description,
        ssh_enabled=bool(row.ssh_enabled),
        idle_shutdown_seconds=row.idle_shutdown_seconds,
        schedules=json.loads(row.schedules or "[]"),
        cpu_set=tuple(int(c) for c in row.cpu_set.split(",") if c != ""),
        properties=json.loads(row.properties or "{}"),
        created_by=row.created_by,
        owner=row.owner,
        created_at=row.created_at,
        state_changed_at=row.state_changed_at,
        last_activity_at=row.last_activity_at,
    )


def _event(conn: Connection, name: str, state: str, reason: str | None, time: int) -> None:
    conn.execute(insert(compute_events).values(compute=name, state=state, reason=reason, time=time))


class ComputeStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, c: Compute) -> None:
        try:
            with self.db.write() as conn:
                if conn.execute(
                    select(computes.c.name).where(computes.c.name_lower == c.name.lower())
                ).first():
                    raise ResourceAlreadyExists(f"Compute '{c.name}' already exists")
                conn.execute(
                    insert(computes).values(
                        name=c.name,
                        name_lower=c.name.lower(),
                        type=c.type,
                        size=c.size,
                        state=c.state,
                        state_reason=c.state_reason,
                        description=c.description,
                        ssh_enabled=c.ssh_enabled,
                        idle_shutdown_seconds=c.idle_shutdown_seconds,
                        schedules=json.dumps(c.schedules),
                        cpu_set=",".join(map(str, c.cpu_set)),
                        properties=json.dumps(c.properties),
                        created_by=c.created_by,
                        owner=c.owner,
                        created_at=c.created_at,
                        state_changed_at=c.state_changed_at,
                        last_activity_at=c.last_activity_at,
                    )
                )
                _event(conn, c.name, c.state, c.state_reason, c.created_at)
        except IntegrityError:  # a concurrent create of the same name (PostgreSQL)
            raise ResourceAlreadyExists(f"Compute '{c.name}' already exists") from None

    def get(self, name: str) -> Compute | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(computes).where(computes.c.name_lower == name.lower())
            ).first()
        return _from_row(row) if row else None

    def all(self) -> list[Compute]:
        with self.db.read() as conn:
            rows = conn.execute(select(computes).order_by(computes.c.name_lower)).all()
        return [_from_row(r) for r in rows]

    def names(self) -> list[str]:
        with self.db.read() as conn:
            return list(
                conn.execute(select(computes.c.name).order_by(computes.c.name_lower)).scalars()
            )

    def update(self, name: str, **values: Any) -> None:
        """Change columns other than the state (description, schedules, activity, …)."""
        for key in ("schedules", "properties"):
            if key in values:
                values[key] = json.dumps(values[key])
        with self.db.write() as conn:
            conn.execute(update(computes).where(computes.c.name == name).values(**values))

    def set_state(
        self, name: str, expect: str, state: str, reason: str | None, time: int, **values: Any
    ) -> bool:
        """Move from ``expect`` to ``state`` and record it, in one transaction.

        False when the row is no longer in ``expect`` (a user's stop raced the
        scheduler's tick): the caller decides again from what is stored now.
        """
        if "properties" in values:
            values["properties"] = json.dumps(values["properties"])
        with self.db.write() as conn:
            done = conn.execute(
                update(computes)
                .where(computes.c.name == name, computes.c.state == expect)
                .values(state=state, state_reason=reason, state_changed_at=time, **values)
            ).rowcount
            if done:
                _event(conn, name, state, reason, time)
        return bool(done)

    def delete(self, name: str, reason: str, time: int) -> None:
        with self.db.write() as conn:
            conn.execute(delete(computes).where(computes.c.name == name))
            _event(conn, name, "Deleted", reason, time)

    def events(self, name: str) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(compute_events)
                .where(compute_events.c.compute == name)
                .order_by(compute_events.c.event_id)
            ).all()
        return [{"state": r.state, "reason": r.reason, "time": r.time} for r in rows]
