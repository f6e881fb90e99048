"""Store fixtures for unit tests: one fresh database per test, SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lapis.store.sql.engine import Database
from lapis.tracking.service import TrackingService

PG_URL = os.environ.get("LAPIS_TEST_DATABASE_URL")


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty metadata store of each kind (PostgreSQL only when configured)."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path}/lapis.db")
        db.migrate()
        yield db
        db.dispose()
        return
    if not PG_URL:
        pytest.skip("LAPIS_TEST_DATABASE_URL not set: PostgreSQL store tests skipped")
    import psycopg

    name = f"lapis_t_{uuid.uuid4().hex[:12]}"
    admin = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = Database(PG_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        db.migrate()
        yield db
    finally:
        db.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def service(database: Database) -> TrackingService:
    svc = TrackingService(database)
    svc.ensure_default_experiment()
    return svc
