"""Job schedules: one row each. ``fired_at`` is the last tick a job was made for — the
one column that keeps a tick from firing twice (see lapis/jobs/schedules.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, String, Table, Text, delete, insert, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError

from lapis.errors import ResourceAlreadyExists, ResourceDoesNotExist
from lapis.store.sql.engine import Database
from lapis.store.sql.tables import metadata

job_schedules = Table(
    "job_schedules",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("display_name", String(256)),
    Column("description", Text),
    Column("tags", Text, nullable=False),  # JSON object
    Column("trigger", Text, nullable=False),  # JSON: lapis/specs/schedules.py parse_trigger
    Column("job", Text, nullable=False),  # JSON: the prepared submission, or {"rerun": name}
    Column("enabled", Boolean, nullable=False),
    Column("fired_at", BigInteger),  # the last tick fired (epoch ms)
    Column("last_job", String(255)),
    Column("last_error", Text),
    Column("created_by", String(256)),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)


@dataclass
class ScheduleRow:
    name: str
    display_name: str | None
    description: str | None
    tags: dict[str, str]
    trigger: dict[str, Any]
    job: dict[str, Any]
    enabled: bool
    fired_at: int | None
    last_job: str | None
    last_error: str | None
    created_by: str | None
    created_at: int
    updated_at: int


_JSON = ("tags", "trigger", "job")


def _row(r: Any) -> ScheduleRow:
    values = {c.name: getattr(r, c.name) for c in job_schedules.c}
    for key in _JSON:
        values[key] = json.loads(values[key])
    values["enabled"] = bool(values["enabled"])
    return ScheduleRow(**values)


class ScheduleStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, row: ScheduleRow) -> None:
        values = {**row.__dict__, **{k: json.dumps(getattr(row, k)) for k in _JSON}}
        try:
            with self.db.write() as conn:
                conn.execute(insert(job_schedules).values(**values))
        except IntegrityError:
            raise ResourceAlreadyExists(f"A schedule named '{row.name}' already exists") from None

    def replace(self, row: ScheduleRow) -> None:
        """New settings for a schedule that exists; what it fired stays."""
        values = {k: v for k, v in row.__dict__.items()
                  if k not in ("name", "fired_at", "last_job", "last_error", "created_by",
                               "created_at")}  # fmt: skip
        for key in _JSON:
            values[key] = json.dumps(values[key])
        with self.db.write() as conn:
            conn.execute(sql_update(job_schedules).where(job_schedules.c.name == row.name)
                         .values(**values))  # fmt: skip

    def get(self, name: str) -> ScheduleRow:
        with self.db.read() as conn:
            r = conn.execute(select(job_schedules).where(job_schedules.c.name == name)).first()
        if r is None:
            raise ResourceDoesNotExist(
                f"Schedule '{name}' not found; `lapis schedule list` lists them"
            )
        return _row(r)

    def list(self) -> list[ScheduleRow]:
        with self.db.read() as conn:
            rows = conn.execute(select(job_schedules).order_by(job_schedules.c.name)).all()
        return [_row(r) for r in rows]

    def set(self, name: str, **values: Any) -> None:
        with self.db.write() as conn:
            conn.execute(sql_update(job_schedules).where(job_schedules.c.name == name)
                         .values(**values))  # fmt: skip

    def claim(self, name: str, tick: int) -> bool:
        """Mark ``tick`` fired unless it (or a later one) was: True for the one caller
        that may make its job."""
        with self.db.write() as conn:
            done = conn.execute(
                sql_update(job_schedules)
                .where(job_schedules.c.name == name)
                .where((job_schedules.c.fired_at.is_(None)) | (job_schedules.c.fired_at < tick))
                .values(fired_at=tick)
            )
        return bool(done.rowcount == 1)

    def delete(self, name: str) -> None:
        with self.db.write() as conn:
            conn.execute(delete(job_schedules).where(job_schedules.c.name == name))
