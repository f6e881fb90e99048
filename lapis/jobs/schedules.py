"""Job schedules: jobs submitted on a cron or recurrence trigger (``az ml schedule``).

A schedule keeps what a submission needs — the job file's text and what the client
uploaded for it (code snapshot, inputs, conda text), or the name of an existing job to
run again — and who made it: each job it submits is submitted as that user, with that
user's rights at the time it fires.

**Exactly once per tick.** A tick's job has a name made from the schedule's name and the
tick's time (``nightly-202612070400``). The job is submitted first, then ``fired_at``
moves to the tick; a job name is unique, so a second try of the same tick — after a
crash between the two, or from a server that restarted — finds the job there and only
moves ``fired_at``. Ticks missed while the server was down are not made up for, but
for the latest one within five minutes (as a late timer would).

The clock is the job scheduler's thread (``JobScheduler.clocks``): each pass asks
every enabled schedule whether a tick fell due, from a cache refreshed every few
seconds, so an idle schedule costs a comparison.
"""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from lapis.auth.service import AuthService
from lapis.entities.auth import Principal
from lapis.errors import (
    InvalidParameterValue,
    LapisError,
    PermissionDenied,
    ResourceAlreadyExists,
)
from lapis.jobs.service import JobService
from lapis.specs.job import parse_job
from lapis.specs.job_schedule import parse_job_schedule
from lapis.specs.pipeline import is_pipeline
from lapis.specs.schedules import next_fire
from lapis.store.sql.engine import Database
from lapis.store.sql.job_schedules import ScheduleRow, ScheduleStore

log = logging.getLogger("lapis.schedules")
LOOKBACK_MS = 5 * 60 * 1000
RELOAD_SECONDS = 2.0
SCHEDULE_TAG = "schedule"


def _now() -> int:
    return int(time.time() * 1000)


def tick_name(schedule: str, tick_ms: int) -> str:
    return f"{schedule}-{datetime.fromtimestamp(tick_ms / 1000, tz=UTC):%Y%m%d%H%M}"


class ScheduleService:
    def __init__(self, db: Database, jobs: JobService, auth: AuthService) -> None:
        self.store = ScheduleStore(db)
        self.jobs = jobs
        self.auth = auth
        self._cache: builtins.list[ScheduleRow] = []
        self._loaded = 0.0
        # checks a pipeline submission whole (the pipeline runner's; set by the workspace)
        self.check_pipeline: Callable[[Mapping[str, Any]], None] = lambda body: None

    # --- the API -----------------------------------------------------------------------
    def create_or_update(self, body: dict[str, Any], principal: Principal | None) -> dict[str, Any]:
        """``{"yaml", "source", "job"?}``: ``job`` is the prepared submission of the job
        file or inline job the schedule names (the CLI and SDK make it)."""
        text, source = body.get("yaml"), str(body.get("source") or "<schedule>")
        if not isinstance(text, str):
            raise InvalidParameterValue("'yaml' must be the schedule file's text")
        spec = parse_job_schedule(text, source)
        if isinstance(spec.create_job, str) and spec.create_job.startswith("azureml:"):
            job: dict[str, Any] = {"rerun": self.jobs.get(spec.create_job[8:], events=False).name}
        else:
            job = body.get("job") or {}
            if not isinstance(job.get("yaml"), str):
                raise InvalidParameterValue(
                    f"{source}: create_job: the job's prepared submission is missing (the CLI "
                    "and SDK read the job file and upload its code)"
                )
            if is_pipeline(job["yaml"]):  # checked whole, as a submission of it would be
                self.check_pipeline(job)
            else:
                parse_job(job["yaml"], str(job.get("source") or source), job.get("overrides") or [])
        if principal is not None and not self.auth.can(principal, "workspaces/jobs/write"):
            raise PermissionDenied("a schedule submits jobs as you: your role cannot submit jobs")
        now = _now()
        row = ScheduleRow(
            name=spec.name, display_name=spec.display_name, description=spec.description,
            tags=spec.tags, trigger=spec.trigger, job=job, enabled=spec.enabled,
            fired_at=now, last_job=None, last_error=None,
            created_by=principal.name if principal else None, created_at=now, updated_at=now,
        )  # fmt: skip
        try:
            self.store.insert(row)
        except ResourceAlreadyExists:
            self.store.replace(row)  # Azure's create_or_update: new settings, same history
        self._loaded = 0.0
        return self.view(self.store.get(spec.name))

    def list(self) -> builtins.list[dict[str, Any]]:
        return [self.view(r) for r in self.store.list()]

    def get(self, name: str) -> dict[str, Any]:
        return self.view(self.store.get(name))

    def set_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        self.store.get(name)
        now = _now()
        # enabling again never makes up for ticks missed while disabled
        changes: dict[str, Any] = {"enabled": enabled, "updated_at": now}
        if enabled:
            changes["fired_at"] = now
        self.store.set(name, **changes)
        self._loaded = 0.0
        return self.get(name)

    def delete(self, name: str) -> None:
        self.store.get(name)
        self.store.delete(name)
        self._loaded = 0.0

    def jobs_of(self, name: str, max_results: int = 100) -> builtins.list[Any]:
        """The jobs the schedule submitted, newest first."""
        self.store.get(name)
        found = self.jobs.list(max_results=1000)
        mine = [j for j in found if (j.spec.get("tags") or {}).get(SCHEDULE_TAG) == name]
        return mine[:max_results]

    def view(self, row: ScheduleRow) -> dict[str, Any]:
        trigger = {**row.trigger, "state": "enabled" if row.enabled else "disabled"}
        upcoming = next_fire(trigger, max(_now(), row.fired_at or 0))
        target = row.job.get("rerun") or row.job.get("source")
        return {
            "name": row.name, "display_name": row.display_name, "description": row.description,
            "tags": row.tags, "trigger": row.trigger["trigger"], "cron": row.trigger["cron"],
            "time_zone": row.trigger["time_zone"], "is_enabled": row.enabled,
            "create_job": f"azureml:{target}" if row.job.get("rerun") else target,
            "next_run": upcoming, "last_fired": row.fired_at if row.last_job else None,
            "last_job": row.last_job, "last_error": row.last_error,
            "created_by": row.created_by, "created_at": row.created_at,
            "updated_at": row.updated_at,
        }  # fmt: skip

    # --- the clock -----------------------------------------------------------------------
    def tick(self, now: int | None = None) -> None:
        """Submit the job of every schedule whose tick fell due since it last fired."""
        now = _now() if now is None else now
        mono = time.monotonic()
        if mono - self._loaded >= RELOAD_SECONDS:
            try:
                self._cache = [r for r in self.store.list() if r.enabled]
            except Exception:  # the store away for a moment: the next pass tries again
                log.exception("reading the job schedules failed")
                return
            self._loaded = mono
        for row in self._cache:
            since = max(row.fired_at or row.created_at, now - LOOKBACK_MS)
            due = None
            t = next_fire(row.trigger, since)
            while t is not None and t <= now:  # the latest due tick, never a burst
                due = t
                t = next_fire(row.trigger, t)
            if due is not None:
                self._fire(row, due)
                row.fired_at = due

    def _fire(self, row: ScheduleRow, tick: int) -> None:
        name = tick_name(row.name, tick)
        error = None
        try:
            principal = self._acting_as(row.created_by)
            if row.job.get("rerun"):
                self.jobs.resubmit(str(row.job["rerun"]), principal, new_name=name,
                                   tags={SCHEDULE_TAG: row.name})  # fmt: skip
            else:
                extra = [f"name={name}", f"tags.{SCHEDULE_TAG}={row.name}"]
                body = {**row.job, "overrides": [*(row.job.get("overrides") or []), *extra]}
                self.jobs.submit(body, principal)
            log.info("schedule %s submitted job %s", row.name, name)
        except ResourceAlreadyExists:
            pass  # this tick's job was made before a restart: only fired_at moves
        except LapisError as exc:
            error = f"{datetime.fromtimestamp(tick / 1000, tz=UTC):%Y-%m-%d %H:%M} UTC: {exc}"
            log.warning("schedule %s could not submit its job: %s", row.name, exc)
        changes: dict[str, Any] = {"fired_at": tick, "last_error": error}
        if error is None:
            changes["last_job"] = name
        self.store.set(row.name, **changes)

    def _acting_as(self, name: str | None) -> Principal | None:
        if name is None:
            return None
        try:
            return self.auth.acting_as(name, "workspaces/jobs/write")
        except PermissionDenied as exc:
            raise PermissionDenied(f"the schedule's owner: {exc}") from None
