"""online endpoints

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "online_endpoints",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("name_lower", sa.String(length=32), nullable=False),
        sa.Column("auth_mode", sa.String(length=16), server_default="key", nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tags", sa.Text(), server_default="{}", nullable=False),
        sa.Column("traffic", sa.Text(), server_default="{}", nullable=False),
        sa.Column("mirror_traffic", sa.Text(), server_default="{}", nullable=False),
        sa.Column("primary_key", sa.String(length=128), nullable=False),
        sa.Column("secondary_key", sa.String(length=128), nullable=False),
        sa.Column("provisioning_state", sa.String(length=32), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_online_endpoints")),
        sa.UniqueConstraint("name_lower", name=op.f("uq_online_endpoints_name_lower")),
    )


def downgrade() -> None:
    op.drop_table("online_endpoints")
