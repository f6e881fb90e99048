"""The data tables: datastores and data-asset versions.

They join the one ``metadata`` of :mod:`lapis.store.sql.tables` (kept apart only to
keep that module readable); the migration environment and the engine import this
module so Alembic and ``create_all`` see them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, String, Table, Text

from lapis.store.sql.tables import metadata

datastores = Table(
    "datastores",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("name_lower", String(255), nullable=False, unique=True),  # names are case-blind
    Column("type", String(32), nullable=False),
    Column("description", Text),
    Column("tags", Text, nullable=False),  # JSON object
    Column("settings", Text, nullable=False),  # JSON object: never a secret
    Column("credential_kind", String(32), nullable=False),
    Column("credentials", Text),  # sealed JSON object, or NULL
    Column("created_by", String(256)),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

data_assets = Table(
    "data_assets",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("name_lower", String(255), nullable=False, index=True),
    Column("type", String(32), nullable=False),
    Column("uri", Text, nullable=False),  # azureml://datastores/..., a storage URL, a job output
    Column("description", Text),
    Column("tags", Text, nullable=False),  # JSON object
    Column("properties", Text, nullable=False),  # JSON object
    Column("archived", Boolean, nullable=False),
    Column("job", String(255)),  # the job that produced it (lineage)
    Column("created_by", String(256)),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
