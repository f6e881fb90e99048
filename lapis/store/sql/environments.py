"""Registered environment versions and the outcome of each content digest's build.

Rows go in and come out as plain dicts of column values; the service decides
what they mean. Versions are strings (Azure's shape); ``version_number`` holds
the integer value of numeric versions so that auto-increment and ``@latest``
compare numbers, not strings ("10" after "9").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from lapis.errors import ResourceAlreadyExists
from lapis.store.sql.engine import Database
from lapis.store.sql.tables import environment_builds, environments


def _row(r: Any) -> dict[str, Any]:
    return dict(r._mapping)


class EnvironmentStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- versions -------------------------------------------------------------------
    def next_version(self, name: str) -> int:
        with self.db.read() as conn:
            top = conn.execute(
                select(func.max(environments.c.version_number)).where(environments.c.name == name)
            ).scalar_one()
        return int(top or 0) + 1

    def insert(self, row: dict[str, Any]) -> None:
        """Add one version; the same name and version twice raises ResourceAlreadyExists."""
        exists = ResourceAlreadyExists(
            f"Environment '{row['name']}' version '{row['version']}' already exists; "
            "register a new version (or leave 'version' out to get the next number)"
        )
        try:
            with self.db.write() as conn:
                if self._get(conn, row["name"], row["version"]) is not None:
                    raise exists
                conn.execute(insert(environments).values(**row))
        except IntegrityError:  # a concurrent writer won the race (PostgreSQL)
            raise exists from None

    @staticmethod
    def _get(conn: Connection, name: str, version: str) -> dict[str, Any] | None:
        r = conn.execute(
            select(environments).where(
                environments.c.name == name, environments.c.version == version
            )
        ).first()
        return None if r is None else _row(r)

    def get(self, name: str, version: str) -> dict[str, Any] | None:
        with self.db.read() as conn:
            return self._get(conn, name, version)

    def versions(self, name: str, include_archived: bool = True) -> list[dict[str, Any]]:
        """Every version of ``name``, newest first (numbers before free-form strings)."""
        query = select(environments).where(environments.c.name == name)
        if not include_archived:
            query = query.where(environments.c.archived.is_(False))
        with self.db.read() as conn:
            rows = [_row(r) for r in conn.execute(query)]
        return sorted(rows, key=_newest_first)

    def latest(self, name: str) -> dict[str, Any] | None:
        rows = self.versions(name, include_archived=False)
        return rows[0] if rows else None

    def names(self) -> list[str]:
        with self.db.read() as conn:
            return [r[0] for r in conn.execute(select(environments.c.name).distinct())]

    def list_latest(self) -> list[dict[str, Any]]:
        """The newest unarchived version of every name."""
        with self.db.read() as conn:
            rows = [
                _row(r)
                for r in conn.execute(
                    select(environments).where(environments.c.archived.is_(False))
                )
            ]
        best: dict[str, dict[str, Any]] = {}
        for row in sorted(rows, key=_newest_first):
            best.setdefault(row["name"], row)
        return sorted(best.values(), key=lambda r: r["name"])

    def set_archived(self, name: str, version: str, archived: bool) -> bool:
        with self.db.write() as conn:
            res = conn.execute(
                update(environments)
                .where(environments.c.name == name, environments.c.version == version)
                .values(archived=archived)
            )
        return bool(res.rowcount)

    # --- builds ---------------------------------------------------------------------
    def upsert_build(self, values: dict[str, Any]) -> None:
        """Insert or update the build row of ``values['digest']`` (one statement, no race)."""
        dialect = postgresql if self.db.dialect == "postgresql" else sqlite
        stmt = dialect.insert(environment_builds).values(**values)
        changes = {k: v for k, v in values.items() if k != "digest"}
        stmt = stmt.on_conflict_do_update(index_elements=["digest"], set_=changes)
        with self.db.write() as conn:
            conn.execute(stmt)

    def get_build(self, digest: str) -> dict[str, Any] | None:
        with self.db.read() as conn:
            r = conn.execute(
                select(environment_builds).where(environment_builds.c.digest == digest)
            ).first()
        return None if r is None else _row(r)


def _newest_first(row: dict[str, Any]) -> tuple[int, int, int]:
    number = row.get("version_number")
    return (0 if number is not None else 1, -(number or 0), -(row.get("created_at") or 0))
