"""access control: passwords, token scopes, instance owners, roles, assignments, audit log

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 04:00:00.000000

The users' single ``role`` column becomes role assignments (admin → Owner,
contributor → Contributor, reader → Reader) and is dropped.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ROLE_NAMES = {"admin": "Owner", "contributor": "Contributor", "reader": "Reader"}


def upgrade() -> None:
    op.create_table(
        "roles",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("name_lower", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("actions", sa.Text(), nullable=False),
        sa.Column("not_actions", sa.Text(), server_default="[]", nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_roles")),
        sa.UniqueConstraint("name_lower", name=op.f("uq_roles_name_lower")),
    )
    op.create_table(
        "role_assignments",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=128), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "role", name=op.f("pk_role_assignments")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("user_name", sa.String(length=256), nullable=True),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("token_id", sa.String(length=32), nullable=True),
        sa.Column("job", sa.String(length=256), nullable=True),
        sa.Column("action", sa.String(length=256), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("client", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_time", "audit_log", ["time"])
    op.create_index("ix_audit_user_time", "audit_log", ["user_name", "time"])

    conn = op.get_bind()
    now = int(time.time() * 1000)
    users = conn.execute(sa.text("SELECT user_id, role FROM users")).all()
    for user_id, role in users:
        conn.execute(
            sa.text(
                "INSERT INTO role_assignments (user_id, role, created_by, created_at) "
                "VALUES (:u, :r, 'migration', :t)"
            ),
            {"u": user_id, "r": _ROLE_NAMES.get(str(role), "Reader"), "t": now},
        )
    with op.batch_alter_table("users") as batch:
        batch.drop_column("role")
        batch.add_column(sa.Column("password_hash", sa.String(length=256), nullable=True))
        batch.add_column(
            sa.Column("auth_source", sa.String(length=32), server_default="local", nullable=False)
        )
        batch.add_column(sa.Column("external_id", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("created_by", sa.String(length=256), nullable=True))
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("scope", sa.Text(), nullable=True))
    with op.batch_alter_table("computes") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("computes") as batch:
        batch.drop_column("owner")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("scope")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("created_by")
        batch.drop_column("external_id")
        batch.drop_column("auth_source")
        batch.drop_column("password_hash")
        batch.add_column(
            sa.Column("role", sa.String(length=64), server_default="reader", nullable=False)
        )
    op.drop_index("ix_audit_user_time", table_name="audit_log")
    op.drop_index("ix_audit_time", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("role_assignments")
    op.drop_table("roles")
