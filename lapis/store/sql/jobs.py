"""Job rows and their status history.

Every status change goes through ``transition``: it checks the move against
the status machine inside the write transaction and appends a ``job_events``
row, so the history is complete and no two writers can race a job into an
illegal state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import and_, func, insert, select, text, update
from sqlalchemy.engine import Connection, Row

from lapis.entities.job_status import TERMINAL, JobStatus, check_transition
from lapis.entities.jobs import Job, JobEvent
from lapis.errors import ResourceAlreadyExists, ResourceDoesNotExist
from lapis.store.sql.engine import Database
from lapis.store.sql.tables import job_events, jobs

ACTIVE = tuple(
    s.value
    for s in (
        JobStatus.PREPARING,
        JobStatus.PROVISIONING,
        JobStatus.STARTING,
        JobStatus.RUNNING,
        JobStatus.FINALIZING,
        JobStatus.CANCEL_REQUESTED,
        JobStatus.NOT_RESPONDING,
    )
)
WAITING = (JobStatus.NOT_STARTED.value, JobStatus.QUEUED.value)
UNFINISHED = ACTIVE + WAITING
PIPELINE = "pipeline"  # a parent job: no compute slot, no backend (lapis/jobs/pipelines.py)
FINAL = tuple(s.value for s in TERMINAL)


def _job(row: Row[Any]) -> Job:
    return Job(
        name=row.name,
        run_id=row.run_id,
        experiment_id=str(row.experiment_id),
        seq=row.seq,
        compute=row.compute,
        status=row.status,
        spec=orjson.loads(row.spec),
        type=row.type,
        display_name=row.display_name,
        status_reason=row.status_reason,
        environment=row.environment,
        environment_digest=row.environment_digest,
        snapshot_digest=row.snapshot_digest,
        exit_code=row.exit_code,
        handle=orjson.loads(row.handle) if row.handle else None,
        job_dir=row.job_dir,
        created_by=row.created_by,
        created_at=row.created_at,
        start_time=row.start_time,
        end_time=row.end_time,
    )


_SEQ_LOCK = 0x1A915_0B5  # arbitrary, constant advisory-lock key for job sequence numbers


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        conn: Connection,
        values: dict[str, Any],
        time_ms: int,
        completed: str | None = None,
    ) -> int:
        """Insert a job (inside the caller's transaction) and return its queue position.

        ``seq`` is max+1, so two concurrent submits on PostgreSQL would read the
        same max; a transaction-scoped advisory lock serialises them, which also
        makes commit order equal queue order (SQLite already has one writer).
        """
        if self.db.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SEQ_LOCK})
        if conn.execute(select(jobs.c.name).where(jobs.c.name == values["name"])).first():
            raise ResourceAlreadyExists(f"A job named '{values['name']}' already exists")
        seq = int(conn.execute(select(func.coalesce(func.max(jobs.c.seq), 0))).scalar_one()) + 1
        conn.execute(
            insert(jobs).values(
                **{**values, "spec": orjson.dumps(values["spec"]).decode()},
                seq=seq,
                status=JobStatus.NOT_STARTED.value,
                created_at=time_ms,
            )
        )
        conn.execute(
            insert(job_events).values(
                job=values["name"], status=JobStatus.NOT_STARTED.value, time=time_ms
            )
        )
        if completed is not None:  # a reused step: Completed in the same transaction, so
            # no crash can leave it NotStarted for the scheduler to run (into another
            # job's outputs)
            check_transition(values["name"], JobStatus.NOT_STARTED, JobStatus.COMPLETED)
            conn.execute(
                update(jobs)
                .where(jobs.c.name == values["name"])
                .values(
                    status=JobStatus.COMPLETED.value,
                    status_reason=completed,
                    start_time=time_ms,
                    end_time=time_ms,
                )
            )
            conn.execute(
                insert(job_events).values(
                    job=values["name"],
                    status=JobStatus.COMPLETED.value,
                    reason=completed,
                    time=time_ms,
                )
            )
        return seq

    def get(self, name: str, events: bool = False) -> Job:
        with self.db.read() as conn:
            row = conn.execute(select(jobs).where(jobs.c.name == name)).first()
            if row is None:
                raise ResourceDoesNotExist(f"Job '{name}' does not exist")
            job = _job(row)
            if events:
                job.events = [
                    JobEvent(e.status, e.time, e.reason)
                    for e in conn.execute(
                        select(job_events)
                        .where(job_events.c.job == name)
                        .order_by(job_events.c.event_id)
                    )
                ]
        return job

    def reusable(self, key: str) -> Job | None:
        """The newest job that ran to completion with this reuse key (a reused step has
        no key of its own: what it names is always a job that really ran)."""
        with self.db.read() as conn:
            row = conn.execute(
                select(jobs)
                .where(jobs.c.reuse_key == key, jobs.c.status == JobStatus.COMPLETED.value)
                .order_by(jobs.c.seq.desc())
                .limit(1)
            ).first()
        return _job(row) if row is not None else None

    def find(self, run_id: str) -> Job | None:
        with self.db.read() as conn:
            row = conn.execute(select(jobs).where(jobs.c.run_id == run_id)).first()
        return _job(row) if row is not None else None

    def search(
        self,
        *,
        statuses: Sequence[str] | None = None,
        compute: str | None = None,
        experiment_id: int | None = None,
        limit: int = 100,
        before_seq: int | None = None,
        ascending: bool = False,
        kind: str | None = None,
        slots_only: bool = False,
    ) -> list[Job]:
        """Jobs, newest first (``ascending``: in queue order). ``slots_only``: the jobs that
        run on a compute — not pipeline parents, which only hold their steps together."""
        q = select(jobs)
        if kind is not None:
            q = q.where(jobs.c.type == kind)
        if slots_only:
            q = q.where(jobs.c.type != PIPELINE)
        if statuses:
            q = q.where(jobs.c.status.in_(list(statuses)))
        if compute is not None:
            q = q.where(jobs.c.compute == compute)
        if experiment_id is not None:
            q = q.where(jobs.c.experiment_id == experiment_id)
        if before_seq is not None:
            q = q.where(jobs.c.seq < before_seq)
        q = q.order_by(jobs.c.seq.asc() if ascending else jobs.c.seq.desc()).limit(limit)
        with self.db.read() as conn:
            return [_job(r) for r in conn.execute(q)]

    def slotted(self, *statuses: str) -> list[Job]:
        """Jobs in these statuses that run on a compute (no pipeline parents), in queue order."""
        return self.search(statuses=statuses, ascending=True, limit=10_000, slots_only=True)

    def reading_asset(self, name: str, limit: int = 200) -> list[Job]:
        """Jobs whose inputs resolved to a version of data asset ``name``, newest first
        (the stored spec keeps ``"asset":"<name>:<version>"`` on each such input)."""
        quoted = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f'%"asset":"{quoted}:%'
        q = (
            select(jobs)
            .where(jobs.c.spec.like(pattern, escape="\\"))
            .order_by(jobs.c.seq.desc())
            .limit(limit)
        )
        with self.db.read() as conn:
            return [_job(r) for r in conn.execute(q)]

    def active_on(self, compute: str) -> tuple[list[Job], list[Job]]:
        """(running, queued) jobs of one compute target, each in submission order."""
        with self.db.read() as conn:
            rows = [
                _job(r)
                for r in conn.execute(
                    select(jobs)
                    .where(jobs.c.compute == compute, jobs.c.status.in_(UNFINISHED))
                    .where(jobs.c.type != PIPELINE)
                    .order_by(jobs.c.seq)
                )
            ]
        return [j for j in rows if j.status in ACTIVE], [j for j in rows if j.status in WAITING]

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Per compute: how many jobs hold a slot, and how many wait in its queue."""
        running: dict[str, int] = {}
        queued: dict[str, int] = {}
        with self.db.read() as conn:
            for compute, status, n in conn.execute(
                select(jobs.c.compute, jobs.c.status, func.count())
                .where(jobs.c.status.in_(UNFINISHED), jobs.c.type != PIPELINE)
                .group_by(jobs.c.compute, jobs.c.status)
            ):
                target = running if status in ACTIVE else queued
                target[compute] = target.get(compute, 0) + int(n)
        return running, queued

    def transition(
        self,
        name: str,
        new: JobStatus,
        *,
        time_ms: int,
        reason: str | None = None,
        expect: Sequence[JobStatus] | None = None,
        **values: Any,
    ) -> bool:
        """Move a job to ``new``; False (and no change) when it is no longer in ``expect``."""
        with self.db.write() as conn:
            # FOR UPDATE: on PostgreSQL a cancel and the scheduler's start must not both
            # read "Queued" and overwrite each other (SQLite's write lock already orders them)
            row = conn.execute(
                select(jobs.c.status).where(jobs.c.name == name).with_for_update()
            ).first()
            if row is None:
                raise ResourceDoesNotExist(f"Job '{name}' does not exist")
            current = JobStatus(row.status)
            if expect is not None and current not in expect:
                return False
            if current is new:
                self._set(conn, name, status_reason=reason, **values)
                return True
            check_transition(name, current, new)
            changes: dict[str, Any] = {"status": new.value, "status_reason": reason, **values}
            if new is JobStatus.RUNNING:
                changes.setdefault("start_time", time_ms)
            if new.is_terminal:
                changes.setdefault("end_time", time_ms)
            self._set(conn, name, **changes)
            conn.execute(
                insert(job_events).values(job=name, status=new.value, reason=reason, time=time_ms)
            )
        return True

    def set_reason(self, name: str, reason: str | None, statuses: Sequence[str]) -> None:
        """Update why a job waits, without a status change (no history row)."""
        with self.db.write() as conn:
            conn.execute(
                update(jobs)
                .where(
                    and_(
                        jobs.c.name == name,
                        jobs.c.status.in_(list(statuses)),
                        jobs.c.status_reason.is_distinct_from(reason),
                    )
                )
                .values(status_reason=reason)
            )

    def set_handle(self, name: str, handle: dict[str, Any]) -> None:
        """Record where the backend runs the job: a restarted server finds it by this."""
        self.set(name, handle=orjson.dumps(handle).decode())

    def set(self, name: str, **values: Any) -> None:
        with self.db.write() as conn:
            self._set(conn, name, **values)

    @staticmethod
    def _set(conn: Connection, name: str, **values: Any) -> None:
        if values:
            conn.execute(update(jobs).where(jobs.c.name == name).values(**values))
