"""Data-asset versions: one row each, immutable but for description, tags and archived."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from lapis.errors import ResourceAlreadyExists
from lapis.store.sql.data_tables import data_assets
from lapis.store.sql.engine import Database


@dataclass
class DataRow:
    name: str
    version: str
    type: str
    uri: str
    description: str | None
    archived: bool
    job: str | None
    created_by: str | None
    created_at: int
    updated_at: int
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)


def _row(r: Any) -> DataRow:
    return DataRow(
        name=r.name, version=r.version, type=r.type, uri=r.uri, description=r.description,
        archived=bool(r.archived), job=r.job, created_by=r.created_by, created_at=r.created_at,
        updated_at=r.updated_at, tags=json.loads(r.tags), properties=json.loads(r.properties),
    )  # fmt: skip


class DataAssetStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, row: DataRow) -> None:
        values = {
            **{k: v for k, v in row.__dict__.items() if k not in ("tags", "properties")},
            "name_lower": row.name.lower(),
            "tags": json.dumps(row.tags),
            "properties": json.dumps(row.properties),
        }
        try:
            with self.db.write() as conn:
                conn.execute(insert(data_assets).values(**values))
        except IntegrityError:
            raise ResourceAlreadyExists(
                f"Data asset {row.name} version {row.version} already exists: versions are "
                "immutable; leave version out to get the next one"
            ) from None

    def versions(self, name: str) -> list[DataRow]:
        """Every version of ``name`` (case-blind), oldest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(data_assets)
                .where(data_assets.c.name_lower == name.lower())
                .order_by(data_assets.c.created_at)
            ).all()
        return [_row(r) for r in rows]

    def names(self) -> list[str]:
        with self.db.read() as conn:
            rows = conn.execute(select(data_assets.c.name).distinct()).all()
        return sorted({r.name for r in rows}, key=str.lower)

    def set(self, name: str, version: str, now: int, **values: Any) -> None:
        if "tags" in values:
            values["tags"] = json.dumps(values["tags"])
        with self.db.write() as conn:
            conn.execute(
                update(data_assets)
                .where(data_assets.c.name_lower == name.lower(), data_assets.c.version == version)
                .values(updated_at=now, **values)
            )
