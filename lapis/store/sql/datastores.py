"""Datastores: one row each; credentials sealed (lapis/store/sealed.py) before they get here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update

from lapis.store.sql.data_tables import datastores
from lapis.store.sql.engine import Database


@dataclass
class DatastoreRow:
    name: str
    type: str
    description: str | None
    credential_kind: str
    credentials: str | None  # sealed JSON
    created_by: str | None
    created_at: int
    updated_at: int
    tags: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


def _row(r: Any) -> DatastoreRow:
    return DatastoreRow(
        name=r.name,
        type=r.type,
        description=r.description,
        credential_kind=r.credential_kind,
        credentials=r.credentials,
        created_by=r.created_by,
        created_at=r.created_at,
        updated_at=r.updated_at,
        tags=json.loads(r.tags),
        settings=json.loads(r.settings),
    )


class DatastoreStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _values(row: DatastoreRow) -> dict[str, Any]:
        return {
            **{k: v for k, v in row.__dict__.items() if k not in ("tags", "settings")},
            "name_lower": row.name.lower(),
            "tags": json.dumps(row.tags),
            "settings": json.dumps(row.settings),
        }

    def get(self, name: str) -> DatastoreRow | None:
        with self.db.read() as conn:
            r = conn.execute(
                select(datastores).where(datastores.c.name_lower == name.lower())
            ).first()
        return None if r is None else _row(r)

    def all(self) -> list[DatastoreRow]:
        with self.db.read() as conn:
            rows = conn.execute(select(datastores).order_by(datastores.c.name_lower)).all()
        return [_row(r) for r in rows]

    def put(self, row: DatastoreRow) -> bool:
        """Insert, or replace the row of that name (case-blind) keeping its creation;
        True when it was new."""
        values = self._values(row)
        with self.db.write() as conn:
            found = conn.execute(
                select(datastores.c.name, datastores.c.created_at, datastores.c.created_by).where(
                    datastores.c.name_lower == row.name.lower()
                )
            ).first()
            if found is None:
                conn.execute(insert(datastores).values(**values))
                return True
            values.update(name=found.name, created_at=found.created_at, created_by=found.created_by)
            conn.execute(
                update(datastores)
                .where(datastores.c.name_lower == row.name.lower())
                .values(**values)
            )
            return False

    def remove(self, name: str) -> bool:
        with self.db.write() as conn:
            done = conn.execute(delete(datastores).where(datastores.c.name_lower == name.lower()))
        return bool(done.rowcount)
