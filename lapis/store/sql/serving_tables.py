"""The serving tables: online endpoints and deployments, their instances, batch endpoints.

They join the one ``metadata`` of :mod:`lapis.store.sql.tables` (kept apart only
to keep that module readable); the migration environment imports this module so
Alembic sees them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from lapis.store.sql.tables import metadata

# --- online endpoints -------------------------------------------------------------
# One row per online endpoint. The keys are stored as issued, not hashed:
# Azure's get-credentials returns them, so the server must be able to read
# them back. ``traffic``/``mirror_traffic`` are JSON text (deployment → percent).
online_endpoints = Table(
    "online_endpoints",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("name_lower", String(32), nullable=False, unique=True),
    Column("auth_mode", String(16), nullable=False, server_default="key"),
    Column("description", Text),
    Column("tags", Text, nullable=False, server_default="{}"),
    Column("traffic", Text, nullable=False, server_default="{}"),
    Column("mirror_traffic", Text, nullable=False, server_default="{}"),
    Column("primary_key", String(128), nullable=False),
    Column("secondary_key", String(128), nullable=False),
    Column("provisioning_state", String(32), nullable=False),
    Column("created_by", String(256)),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# --- online deployments -----------------------------------------------------------
# A deployment belongs to an endpoint (``endpoint`` holds the endpoint's
# lower-cased name). ``spec`` is the checked deployment document (JSON);
# ``generation`` goes up with every update, and instances of an older
# generation are drained and stopped once the new ones are ready (rollover).
online_deployments = Table(
    "online_deployments",
    metadata,
    Column("endpoint", String(32), primary_key=True),
    Column("name", String(32), nullable=False),
    Column("name_lower", String(32), primary_key=True),
    Column("spec", Text, nullable=False),
    Column("model_name", String(256)),
    Column("model_version", String(64)),
    Column("provisioning_state", String(32), nullable=False),
    Column("state_reason", Text),
    Column("generation", Integer, nullable=False, server_default="1"),
    Column("created_by", String(256)),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_online_deployments_model", "model_name", "model_version"),
)

# Instance processes of online deployments, so that a restarted server finds
# (and ends or adopts) what the previous one started. ``pid_start`` is the
# process start time that makes a pid unambiguous.
deployment_instances = Table(
    "deployment_instances",
    metadata,
    Column("endpoint", String(32), primary_key=True),
    Column("deployment", String(32), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("generation", Integer, primary_key=True),
    Column("pid", Integer),
    Column("pid_start", BigInteger),
    Column("port", Integer),
    Column("state", String(32), nullable=False),
    Column("restarts", Integer, nullable=False, server_default="0"),
    Column("started_at", BigInteger),
)

# --- batch endpoints ----------------------------------------------------------------
# A batch endpoint names a default deployment; each invocation is a job (its
# tags point back at the endpoint and deployment), so there is no
# invocation table.
batch_endpoints = Table(
    "batch_endpoints",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("name_lower", String(32), nullable=False, unique=True),
    Column("description", Text),
    Column("tags", Text, nullable=False, server_default="{}"),
    Column("default_deployment", String(32)),
    Column("provisioning_state", String(32), nullable=False),
    Column("created_by", String(256)),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

batch_deployments = Table(
    "batch_deployments",
    metadata,
    Column("endpoint", String(32), primary_key=True),
    Column("name", String(32), nullable=False),
    Column("name_lower", String(32), primary_key=True),
    Column("spec", Text, nullable=False),
    Column("model_name", String(256)),
    Column("model_version", String(64)),
    Column("provisioning_state", String(32), nullable=False),
    Column("created_by", String(256)),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
