"""online deployments, their instances, batch endpoints and batch deployments

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "online_deployments",
        sa.Column("endpoint", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("name_lower", sa.String(length=32), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("provisioning_state", sa.String(length=32), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("generation", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", "name_lower", name=op.f("pk_online_deployments")),
    )
    op.create_index(
        "ix_online_deployments_model", "online_deployments", ["model_name", "model_version"]
    )
    op.create_table(
        "deployment_instances",
        sa.Column("endpoint", sa.String(length=32), nullable=False),
        sa.Column("deployment", sa.String(length=32), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("pid_start", sa.BigInteger(), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("restarts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint(
            "endpoint", "deployment", "idx", "generation", name=op.f("pk_deployment_instances")
        ),
    )
    op.create_table(
        "batch_endpoints",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("name_lower", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tags", sa.Text(), server_default="{}", nullable=False),
        sa.Column("default_deployment", sa.String(length=32), nullable=True),
        sa.Column("provisioning_state", sa.String(length=32), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_batch_endpoints")),
        sa.UniqueConstraint("name_lower", name=op.f("uq_batch_endpoints_name_lower")),
    )
    op.create_table(
        "batch_deployments",
        sa.Column("endpoint", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("name_lower", sa.String(length=32), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("provisioning_state", sa.String(length=32), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", "name_lower", name=op.f("pk_batch_deployments")),
    )


def downgrade() -> None:
    op.drop_table("batch_deployments")
    op.drop_table("batch_endpoints")
    op.drop_table("deployment_instances")
    op.drop_index("ix_online_deployments_model", table_name="online_deployments")
    op.drop_table("online_deployments")
