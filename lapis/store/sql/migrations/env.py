"""Alembic environment: runs on the connection the server hands over."""

from __future__ import annotations

from alembic import context

from lapis.store.sql import (  # noqa: F401  (tables join metadata)
    auth_tables,
    components,
    data_tables,
    job_schedules,
    serving_tables,
)
from lapis.store.sql.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only for `alembic revision --autogenerate`
    from sqlalchemy import create_engine

    url = context.config.get_main_option("sqlalchemy.url") or "sqlite:///:memory:"
    connection = create_engine(url).connect()

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
