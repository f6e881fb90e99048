"""Table definitions for the metadata store (SQLAlchemy Core).

Core, not the ORM: the hot paths (metric ingest, run search, history reads) are
bulk statements, and the ORM's unit of work would cost more than the database.
Times are UTC epoch milliseconds, as MLflow stores them. The Alembic migrations
under ``migrations/versions`` create exactly these tables; a change here needs
a new migration (``make migration``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# --- principals -------------------------------------------------------------
# A principal is a user; tokens belong to users. ``role`` is a single role name
# today; the RBAC issue turns it into role assignments without changing tokens.
users = Table(
    "users",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("display_name", String(256)),
    Column("created_at", BigInteger, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default="0"),
    # Roles are in role_assignments (lapis/store/sql/auth_tables.py).
    # argon2id hash for sign-in with a password; NULL: token-only user.
    Column("password_hash", String(256)),
    # Where the identity comes from: "local" today; single sign-on would add
    # "oidc" with the issuer's subject in external_id.
    Column("auth_source", String(32), nullable=False, server_default="local"),
    Column("external_id", String(256)),
    Column("created_by", String(256)),
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("user_id", String(32), ForeignKey("users.user_id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger),
    Column("revoked", Boolean, nullable=False, server_default="0"),
    # JSON: what a job's token may reach ({"job", "run_id", "experiment_id"}); NULL for
    # a person's token, which reaches what the user's roles allow.
    Column("scope", Text),
)

# --- tracking ---------------------------------------------------------------
experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("artifact_location", Text, nullable=False),
    Column("lifecycle_stage", String(32), nullable=False, server_default="active"),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
    Column("created_by", String(256)),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text),
    PrimaryKeyConstraint("experiment_id", "key"),
)

runs = Table(
    "runs",
    metadata,
    Column("run_uuid", String(32), primary_key=True),
    Column("name", String(250)),
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id"), nullable=False),
    Column("user_id", String(256)),
    Column("created_by", String(256)),
    Column("status", String(20), nullable=False),
    Column("start_time", BigInteger),
    Column("end_time", BigInteger),
    Column("deleted_time", BigInteger),
    Column("lifecycle_stage", String(20), nullable=False, server_default="active"),
    Column("artifact_uri", Text, nullable=False),
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
)

params = Table(
    "params",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("run_uuid", "key"),
)

tags = Table(
    "tags",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text),
    PrimaryKeyConstraint("run_uuid", "key"),
)

# A series is one metric key of one run; points refer to it by a small integer
# instead of repeating (run_uuid, key) in every row. ``latest_metrics`` is the
# series table: it also holds the newest point — by step, then timestamp, then
# value, as MLflow orders them — kept on write so that search and run listings
# never scan the history.
SERIES_ID = BigInteger().with_variant(Integer, "sqlite")  # INTEGER PRIMARY KEY = rowid

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("series_id", SERIES_ID, primary_key=True, autoincrement=True),
    Column("run_uuid", String(32), nullable=False),
    Column("key", String(250), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    UniqueConstraint("run_uuid", "key"),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

# Every point ever logged. The primary key is the whole point: it orders the
# history query and makes a re-sent batch idempotent (MLflow's de-duplication).
# On SQLite the table is WITHOUT ROWID: an insert maintains one B-tree of
# integer-led keys, which is what lets a single process ingest 10^5+ points/s.
metrics = Table(
    "metrics",
    metadata,
    Column("series_id", SERIES_ID, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    PrimaryKeyConstraint("series_id", "step", "timestamp", "value", "is_nan"),
    sqlite_with_rowid=False,
)

# Points that MLflow 3 links to a logged model and/or a dataset, copied here so
# that a model's metrics are one indexed lookup and the hot table stays narrow.
model_metrics = Table(
    "model_metrics",
    metadata,
    Column("model_id", String(64), nullable=False),
    Column("run_uuid", String(32), nullable=False),
    Column("key", String(250), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Column("dataset_name", String(500)),
    Column("dataset_digest", String(36)),
    PrimaryKeyConstraint("model_id", "key", "step", "timestamp", "value", "is_nan"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("dataset_uuid", String(36), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id"), nullable=False),
    Column("name", String(500), nullable=False),
    Column("digest", String(36), nullable=False),
    Column("source_type", String(36), nullable=False),
    Column("source", Text, nullable=False),
    Column("schema", Text),
    Column("profile", Text),
    UniqueConstraint("experiment_id", "name", "digest"),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid"), nullable=False),
    Column("dataset_uuid", String(36), ForeignKey("datasets.dataset_uuid"), nullable=False),
    Column("tags_json", Text, nullable=False, server_default="[]"),
    PrimaryKeyConstraint("run_uuid", "dataset_uuid"),
)

# MLflow 3 logged models: a model produced (output) or consumed (input) by runs.
logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(64), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id"), nullable=False),
    Column("name", String(500), nullable=False),
    Column("artifact_location", Text, nullable=False),
    Column("creation_timestamp", BigInteger, nullable=False),
    Column("last_updated_timestamp", BigInteger, nullable=False),
    Column("status", String(20), nullable=False),
    Column("status_message", Text),
    Column("lifecycle_stage", String(20), nullable=False, server_default="active"),
    Column("model_type", String(500)),
    Column("source_run_id", String(32)),
    Index("ix_logged_models_experiment", "experiment_id"),
)

# MLflow 3 traces: one row per trace (its spans are a traces.json in the artifact store,
# as MLflow's servers before span storage kept them); tags in their own table, so that
# set_trace_tag never rewrites the row, and searched like run tags.
traces = Table(
    "traces",
    metadata,
    Column("trace_id", String(64), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id"), nullable=False),
    Column("request_time", BigInteger, nullable=False),
    Column("execution_duration", BigInteger),
    Column("state", String(20), nullable=False),
    Column("request_preview", Text),
    Column("response_preview", Text),
    Column("client_request_id", String(250)),
    Column("trace_metadata", Text, nullable=False),  # a JSON object
    Column("created_by", String(256)),
    Index("ix_traces_experiment_id_request_time", "experiment_id", "request_time"),
)

trace_tags = Table(
    "trace_tags",
    metadata,
    Column(
        "trace_id", String(64), ForeignKey("traces.trace_id", ondelete="CASCADE"), nullable=False
    ),
    Column("key", String(250), nullable=False),
    Column("value", Text),
    PrimaryKeyConstraint("trace_id", "key"),
)

# Registry webhooks (MLflow 3's): the subscriptions, and an outbox of deliveries written
# when an event happens and worked off by a sender thread, so a restart loses none.
webhooks = Table(
    "webhooks",
    metadata,
    Column("webhook_id", String(40), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("description", Text),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),  # JSON list of "entity.action"
    Column("status", String(16), nullable=False),
    Column("secret", Text),  # sealed with the workspace key
    Column("created_by", String(256)),
    Column("creation_timestamp", BigInteger, nullable=False),
    Column("last_updated_timestamp", BigInteger, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("delivery_id", String(40), primary_key=True),
    Column("webhook_id", String(40), nullable=False),
    Column("event", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # the JSON body, signed as sent
    Column("state", String(16), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_webhook_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
    Index("ix_webhook_deliveries_webhook_id", "webhook_id"),
)

logged_model_params = Table(
    "logged_model_params",
    metadata,
    Column("model_id", String(64), ForeignKey("logged_models.model_id"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("model_id", "key"),
)

logged_model_tags = Table(
    "logged_model_tags",
    metadata,
    Column("model_id", String(64), ForeignKey("logged_models.model_id"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text),
    PrimaryKeyConstraint("model_id", "key"),
)

run_model_io = Table(
    "run_model_io",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid"), nullable=False),
    Column("model_id", String(64), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("step", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("run_uuid", "model_id", "direction"),
)

# --- model registry ---------------------------------------------------------
registered_models = Table(
    "registered_models",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Column("description", Text),
    Column("created_by", String(256)),
)

registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column("name", String(256), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text),
    PrimaryKeyConstraint("name", "key"),
)

registered_model_aliases = Table(
    "registered_model_aliases",
    metadata,
    Column("name", String(256), nullable=False),
    Column("alias", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    PrimaryKeyConstraint("name", "alias"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("name", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Column("description", Text),
    Column("user_id", String(256)),
    Column("current_stage", String(20), nullable=False, server_default="None"),
    Column("source", Text, nullable=False),
    Column("storage_location", Text),
    Column("run_id", String(32)),
    Column("run_link", Text),
    Column("model_id", String(64)),
    Column("status", String(20), nullable=False, server_default="READY"),
    Column("status_message", Text),
    Column("lifecycle_stage", String(20), nullable=False, server_default="active"),
    PrimaryKeyConstraint("name", "version"),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("name", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text),
    PrimaryKeyConstraint("name", "version", "key"),
)

# --- compute ------------------------------------------------------------------
# One row per compute target the user created (``local`` is implicit and never
# stored). ``cpu_set`` is the slice of this host's cores an instance is pinned
# to; ``schedules`` and ``properties`` are JSON text so that new compute types
# add fields without a migration.
computes = Table(
    "computes",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("name_lower", String(64), nullable=False, unique=True),
    Column("type", String(32), nullable=False),
    Column("size", String(64)),
    Column("state", String(32), nullable=False),
    Column("state_reason", Text),
    Column("description", Text),
    Column("ssh_enabled", Boolean, nullable=False, server_default="0"),
    Column("idle_shutdown_seconds", Integer),
    Column("schedules", Text, nullable=False, server_default="[]"),
    Column("cpu_set", String(256), nullable=False, server_default=""),
    Column("properties", Text, nullable=False, server_default="{}"),
    Column("created_by", String(256)),
    # The user who may use the instance (submit jobs as themselves, open its tools):
    # its creator, or the user it was assigned to; NULL on rows from before owners.
    Column("owner", String(256)),
    Column("created_at", BigInteger, nullable=False),
    Column("state_changed_at", BigInteger, nullable=False),
    Column("last_activity_at", BigInteger, nullable=False),
)

compute_events = Table(
    "compute_events",
    metadata,
    Column("event_id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("compute", String(64), nullable=False, index=True),
    Column("state", String(32), nullable=False),
    Column("reason", Text),
    Column("time", BigInteger, nullable=False),
)

# --- environments ---------------------------------------------------------------
# Registered environment versions. ``spec`` is the normalised JSON (python,
# requirements, conda leftovers); ``digest`` names the built folder under
# ``$LAPIS_HOME/envs`` and is shared by every version with the same content.
environments = Table(
    "environments",
    metadata,
    Column("name", String(256), nullable=False),
    Column("version", String(64), nullable=False),
    Column("version_number", Integer),
    Column("description", Text),
    Column("image", Text),
    Column("conda_file", Text),
    Column("spec", Text, nullable=False),
    Column("digest", String(64), nullable=False, index=True),
    Column("tags", Text, nullable=False, server_default="{}"),
    Column("archived", Boolean, nullable=False, server_default="0"),
    Column("created_by", String(256)),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("name", "version"),
)

# One row per content digest: what happened the last time it was built.
environment_builds = Table(
    "environment_builds",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("status", String(32), nullable=False),
    Column("error", Text),
    Column("log_path", Text),
    Column("python", Text),
    Column("started_at", BigInteger),
    Column("finished_at", BigInteger),
)

# --- jobs -------------------------------------------------------------------------
# A job is an MLflow run (same id) plus what it takes to execute it. The
# scheduler owns ``status``/``status_reason`` and ``handle``; ``seq``
# is the submission order the instance queue keeps. ``spec`` is the resolved
# request (JSON) the supervisor is started from.
jobs = Table(
    "jobs",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("run_id", String(32), nullable=False, unique=True),
    Column("experiment_id", Integer, nullable=False),
    Column("seq", BigInteger, nullable=False, unique=True),
    Column("type", String(32), nullable=False, server_default="command"),
    Column("display_name", String(256)),
    Column("compute", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("status_reason", Text),
    Column("spec", Text, nullable=False),
    Column("environment", Text),
    Column("environment_digest", String(64)),
    Column("snapshot_digest", String(64)),
    Column("exit_code", Integer),
    Column("handle", Text),  # the compute backend's JSON handle (lapis/compute/base.py)
    Column("job_dir", Text),
    Column("created_by", String(256)),
    Column("created_at", BigInteger, nullable=False),
    Column("start_time", BigInteger),
    Column("end_time", BigInteger),
    # what makes a deterministic pipeline step's result the same (lapis/jobs/reuse.py)
    Column("reuse_key", String(64)),
    Index(None, "compute", "status"),
    Index(None, "status"),
    Index(None, "reuse_key"),
)

job_events = Table(
    "job_events",
    metadata,
    Column("event_id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("job", String(255), nullable=False, index=True),
    Column("status", String(32), nullable=False),
    Column("reason", Text),
    Column("time", BigInteger, nullable=False),
)
