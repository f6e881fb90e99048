"""Component versions: one row each, immutable but for tags, description and archived.

The table joins the one ``metadata`` of :mod:`lapis.store.sql.tables`; the migration
environment imports this module so Alembic sees it (migration 0011).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, String, Table, Text, insert, select, update
from sqlalchemy.exc import IntegrityError

from lapis.errors import ResourceAlreadyExists
from lapis.store.sql.engine import Database
from lapis.store.sql.tables import metadata

components = Table(
    "components",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("document", Text, nullable=False),  # JSON: the parsed spec and what came with it
    Column("content_hash", String(64), nullable=False),  # same file twice: same version
    Column("description", Text),
    Column("tags", Text, nullable=False),  # JSON object
    Column("archived", Boolean, nullable=False),
    Column("created_by", String(256)),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)


@dataclass
class ComponentRow:
    name: str
    version: str
    type: str
    document: dict[str, Any]
    content_hash: str
    description: str | None
    archived: bool
    created_by: str | None
    created_at: int
    updated_at: int
    tags: dict[str, str] = field(default_factory=dict)


def _row(r: Any) -> ComponentRow:
    return ComponentRow(
        name=r.name, version=r.version, type=r.type, document=json.loads(r.document),
        content_hash=r.content_hash, description=r.description, archived=bool(r.archived),
        created_by=r.created_by, created_at=r.created_at, updated_at=r.updated_at,
        tags=json.loads(r.tags),
    )  # fmt: skip


class ComponentStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, row: ComponentRow) -> None:
        values = {
            **row.__dict__,
            "document": json.dumps(row.document),
            "tags": json.dumps(row.tags),
        }
        try:
            with self.db.write() as conn:
                conn.execute(insert(components).values(**values))
        except IntegrityError:
            raise ResourceAlreadyExists(
                f"Component {row.name} version {row.version} already exists"
            ) from None

    def versions(self, name: str) -> list[ComponentRow]:
        """Every version of ``name``, oldest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(components)
                .where(components.c.name == name)
                .order_by(components.c.created_at, components.c.version)
            ).all()
        return [_row(r) for r in rows]

    def names(self) -> list[str]:
        with self.db.read() as conn:
            rows = conn.execute(select(components.c.name).distinct()).all()
        return sorted(r.name for r in rows)

    def set(self, name: str, version: str, now: int, **values: Any) -> None:
        if "tags" in values:
            values["tags"] = json.dumps(values["tags"])
        with self.db.write() as conn:
            conn.execute(
                update(components)
                .where(components.c.name == name, components.c.version == version)
                .values(updated_at=now, **values)
            )
