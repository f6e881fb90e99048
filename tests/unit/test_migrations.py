"""The Alembic migrations and tables.py describe the same schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from lapis.store.sql import auth_tables, data_tables, serving_tables  # noqa: F401  (tables join metadata)
from lapis.store.sql.engine import Database
from lapis.store.sql.tables import metadata


def test_migrations_match_the_table_definitions(database: Database) -> None:
    with database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    # Server defaults are compared loosely by Alembic; anything else is drift.
    assert diff == [], diff


def test_job_handles_are_carried_over_from_the_supervisor_columns(tmp_path: object) -> None:
    """A job running across the upgrade to 0006 keeps what finds its supervisor again."""
    from pathlib import Path

    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from lapis.store.sql.engine import MIGRATIONS_DIR
    from lapis.store.sql.jobs import JobStore

    db = Database(f"sqlite:///{Path(str(tmp_path))}/old.db")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
        for name, status, pid, folder in [
            ("running", "Running", 4242, "/h/jobs/running"),
            ("ended", "Completed", None, "/h/jobs/ended"),
            ("starting", "Preparing", None, "/h/jobs/starting"),
            ("queued", "Queued", None, None),
        ]:
            conn.execute(
                sa.text(
                    "INSERT INTO jobs (name, run_id, experiment_id, seq, compute, spec, "
                    "created_at, status, supervisor_pid, supervisor_start, job_dir) VALUES "
                    "(:n, :r, 0, :s, 'local', '{}', 1, :st, :pid, 77, :dir)"
                ),
                {
                    "n": name,
                    "r": name.ljust(32, "0"),
                    "s": len(name),
                    "st": status,
                    "pid": pid,
                    "dir": folder,
                },
            )
        command.upgrade(cfg, "head")
    store = JobStore(db)
    assert store.get("running").handle == {"pid": 4242, "start": 77, "dir": "/h/jobs/running"}
    assert store.get("ended").handle == {"pid": None, "start": 77, "dir": "/h/jobs/ended"}
    assert store.get("starting").handle is None  # launched again by the scheduler
    assert store.get("queued").handle is None
    db.dispose()
