"""The Alembic migrations and tables.py describe the same schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from lapis.store.sql import auth_tables, serving_tables  # noqa: F401  (tables join metadata)
from lapis.store.sql.engine import Database
from lapis.store.sql.tables import metadata


def test_migrations_match_the_table_definitions(database: Database) -> None:
    with database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    # Server defaults are compared loosely by Alembic; anything else is drift.
    assert diff == [], diff
