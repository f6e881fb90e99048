"""job reuse key: what makes a deterministic pipeline step's result the same

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 07:00:00.000000

A pipeline step whose component, environment, code, inputs and settings hash to the
key of an earlier completed job is not run again (lapis/jobs/reuse.py); the index
makes that look-up one probe however many jobs the workspace holds.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("reuse_key", sa.String(length=64), nullable=True))
        batch.create_index(batch.f("ix_jobs_reuse_key"), ["reuse_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index(batch.f("ix_jobs_reuse_key"))
        batch.drop_column("reuse_key")
