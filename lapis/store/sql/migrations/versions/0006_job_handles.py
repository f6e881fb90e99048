"""job handles: the compute backend's opaque JSON handle replaces the supervisor columns

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 07:00:00.000000

Every compute type now keeps what it needs to find a job again in one JSON
column (lapis/compute/base.py). Rows of the process backends get
``{"pid", "start", "dir"}`` from the old ``supervisor_pid``/``supervisor_start``
and ``job_dir`` columns, so jobs running across the upgrade are re-attached.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ENDED = ("Completed", "Failed", "Canceled")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("handle", sa.Text(), nullable=True))
    conn = op.get_bind()
    jobs = sa.table(
        "jobs",
        sa.column("name", sa.String),
        sa.column("supervisor_pid", sa.Integer),
        sa.column("supervisor_start", sa.BigInteger),
        sa.column("job_dir", sa.Text),
        sa.column("status", sa.String),
        sa.column("handle", sa.Text),
    )
    c = jobs.c
    rows = conn.execute(
        sa.select(c.name, c.supervisor_pid, c.supervisor_start, c.job_dir, c.status).where(
            c.job_dir.is_not(None)
        )
    ).all()
    for name, pid, start, job_dir, status in rows:
        if pid is None and status not in _ENDED:
            continue  # caught while starting: the scheduler starts it again
        handle = {"pid": pid, "start": start, "dir": job_dir}
        conn.execute(sa.update(jobs).where(jobs.c.name == name).values(handle=json.dumps(handle)))
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("supervisor_start")
        batch.drop_column("supervisor_pid")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("supervisor_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("supervisor_start", sa.BigInteger(), nullable=True))
    conn = op.get_bind()
    jobs = sa.table(
        "jobs",
        sa.column("name", sa.String),
        sa.column("supervisor_pid", sa.Integer),
        sa.column("supervisor_start", sa.BigInteger),
        sa.column("handle", sa.Text),
    )
    for name, raw in conn.execute(
        sa.select(jobs.c.name, jobs.c.handle).where(jobs.c.handle.is_not(None))
    ).all():
        handle = json.loads(raw)
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.name == name)
            .values(supervisor_pid=handle.get("pid"), supervisor_start=handle.get("start"))
        )
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("handle")
