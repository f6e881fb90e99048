"""Access-control tables: roles, role assignments and the audit log.

They join the one ``metadata`` of :mod:`lapis.store.sql.tables` (users and
tokens live there since the first migration); the migration environment
imports this module so Alembic sees them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from lapis.store.sql.tables import metadata

# Custom roles (the built-in ones are code, not rows). ``actions``/``not_actions`` are
# JSON lists of action strings with wildcards, as in Azure's role definitions.
roles = Table(
    "roles",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("name_lower", String(128), nullable=False, unique=True),
    Column("description", Text),
    Column("actions", Text, nullable=False),
    Column("not_actions", Text, nullable=False, server_default="[]"),
    Column("created_by", String(256)),
    Column("created_at", BigInteger, nullable=False),
)

# Which user holds which role (workspace scope). Built-in and custom role names alike.
role_assignments = Table(
    "role_assignments",
    metadata,
    Column("user_id", String(32), nullable=False),
    Column("role", String(128), nullable=False),
    Column("created_by", String(256)),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("user_id", "role"),
)

# Every write, appended and never updated: no route changes or deletes a row.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", BigInteger, nullable=False),
    Column("user_name", String(256)),
    Column("user_id", String(32)),
    Column("token_id", String(32)),
    Column("job", String(256)),  # set when a job's token made the call
    Column("action", String(256), nullable=False),
    Column("method", String(16), nullable=False),
    Column("path", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("allowed", Boolean, nullable=False),
    Column("client", String(128)),
    Index("ix_audit_time", "time"),
    Index("ix_audit_user_time", "user_name", "time"),
)
