"""Online endpoints: one row each, found case-insensitively through ``name_lower``.

The row keeps the spelling the user chose. Keys are stored sealed with the
workspace key (:mod:`lapis.store.sealed`), not hashed, because
``get-credentials`` must return them, as Azure's does; they are plaintext only in
memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from lapis.errors import ResourceAlreadyExists
from lapis.store.sealed import Sealer
from lapis.store.sql.engine import Database
from lapis.store.sql.serving_tables import online_endpoints as t

JSON_COLUMNS = ("tags", "traffic", "mirror_traffic")


@dataclass
class OnlineEndpoint:
    name: str
    primary_key: str
    secondary_key: str
    created_at: int
    updated_at: int
    auth_mode: str = "key"
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    provisioning_state: str = "Succeeded"
    created_by: str | None = None


def _from_row(row: Any, sealer: Sealer | None) -> OnlineEndpoint:
    def key(stored: str) -> str:
        return sealer.open(stored) if sealer is not None else stored

    return OnlineEndpoint(
        name=row.name,
        primary_key=key(row.primary_key),
        secondary_key=key(row.secondary_key),
        created_at=row.created_at,
        updated_at=row.updated_at,
        auth_mode=row.auth_mode,
        description=row.description,
        tags=json.loads(row.tags or "{}"),
        traffic=json.loads(row.traffic or "{}"),
        mirror_traffic=json.loads(row.mirror_traffic or "{}"),
        provisioning_state=row.provisioning_state,
        created_by=row.created_by,
    )


class EndpointStore:
    def __init__(self, db: Database, sealer: Sealer | None = None) -> None:
        self.db = db
        self.sealer = sealer

    def _seal(self, key: str) -> str:
        return self.sealer.seal(key) if self.sealer is not None else key

    def reseal_plaintext_keys(self) -> int:
        """Seal keys written before sealing existed (once, at start-up)."""
        if self.sealer is None:
            return 0
        count = 0
        for e in self.all():
            with self.db.read() as conn:
                row = conn.execute(select(t).where(t.c.name == e.name)).first()
            if row is not None and not (
                Sealer.is_sealed(row.primary_key) and Sealer.is_sealed(row.secondary_key)
            ):
                self.update(e.name, primary_key=e.primary_key, secondary_key=e.secondary_key)
                count += 1
        return count

    def insert(self, e: OnlineEndpoint) -> None:
        message = f"Online endpoint '{e.name}' already exists"
        try:
            with self.db.write() as conn:
                if conn.execute(select(t.c.name).where(t.c.name_lower == e.name.lower())).first():
                    raise ResourceAlreadyExists(message)
                conn.execute(
                    insert(t).values(
                        name=e.name,
                        name_lower=e.name.lower(),
                        auth_mode=e.auth_mode,
                        description=e.description,
                        tags=json.dumps(e.tags),
                        traffic=json.dumps(e.traffic),
                        mirror_traffic=json.dumps(e.mirror_traffic),
                        primary_key=self._seal(e.primary_key),
                        secondary_key=self._seal(e.secondary_key),
                        provisioning_state=e.provisioning_state,
                        created_by=e.created_by,
                        created_at=e.created_at,
                        updated_at=e.updated_at,
                    )
                )
        except IntegrityError:  # a concurrent create of the same name
            raise ResourceAlreadyExists(message) from None

    def get(self, name: str) -> OnlineEndpoint | None:
        with self.db.read() as conn:
            row = conn.execute(select(t).where(t.c.name_lower == name.lower())).first()
        return _from_row(row, self.sealer) if row else None

    def all(self) -> list[OnlineEndpoint]:
        with self.db.read() as conn:
            rows = conn.execute(select(t).order_by(t.c.name_lower)).all()
        return [_from_row(r, self.sealer) for r in rows]

    def update(self, name: str, **values: Any) -> None:
        """Change columns of the endpoint whose stored name is ``name``."""
        for key in JSON_COLUMNS:
            if key in values:
                values[key] = json.dumps(values[key])
        for key in ("primary_key", "secondary_key"):
            if key in values:
                values[key] = self._seal(values[key])
        with self.db.write() as conn:
            conn.execute(update(t).where(t.c.name == name).values(**values))

    def delete(self, name: str) -> None:
        with self.db.write() as conn:
            conn.execute(delete(t).where(t.c.name == name))
