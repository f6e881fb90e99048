"""The lifecycle of computes: state changes, backend calls, idle shutdown, schedules.

:class:`Lifecycle` is the one place a compute's ``state`` changes (``move``)
and the one place its backend's lifecycle hooks are called, so every change is
recorded with its reason and the scheduler is woken once. The compute service
(requests from people) and ``tick`` (time passing, driven by the job scheduler
about every 100 ms with the running and queued job counts per compute) both
go through it. The terms (*activity*, *idle deadline*, a schedule's *window*)
are defined in the compute service's docstring.

Backend calls::

    created   → provision(c); Creating → Running once observe() says ready
    start     → start(c);     Starting → Running once ready
    stopping, no job running → stop(c);  → Stopped
    restarting, no job running → stop(c), start(c); → Running (or Starting until ready)
    idle past the deadline → stop(c); → Stopped
    deleted   → delete(c) before the row goes

A backend that raises moves the compute to ``Failed`` with its message.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Mapping
from typing import Any

from lapis.compute.base import ComputeBackend
from lapis.compute.registry import BackendRegistry
from lapis.entities.compute import Compute, ComputeState
from lapis.errors import LapisError
from lapis.specs.schedules import ScheduleWindows
from lapis.store.sql.computes import ComputeStore

log = logging.getLogger("lapis.compute")
S = ComputeState
ACTIVITY_PERSIST_MS = 30_000  # how stale the stored activity of a busy instance may get
SCHEDULE_PERSIST_MS = 30_000
SCHEDULE_LOOKBACK_MS = 60_000  # after a restart, triggers older than this are not caught up


def fmt_seconds(seconds: int) -> str:
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def stopping_reason(cause: str, running: int) -> str:
    if running:
        return (
            f"stopping {cause}; waiting for {running} running job(s) to finish "
            "(queued jobs stay queued)"
        )
    return f"stopping {cause}"


class Lifecycle:
    def __init__(self, store: ComputeStore, backends: BackendRegistry) -> None:
        self.store = store
        self.backends = backends
        self.busy_at: dict[str, int] = {}  # last tick that saw jobs, per name_lower
        self.windows = ScheduleWindows(SCHEDULE_LOOKBACK_MS, SCHEDULE_PERSIST_MS)
        # the job scheduler sets this: a state change may let queued jobs start (or stop them)
        self.wake: Callable[[], None] = lambda: None
        self.changed: list[Callable[[], None]] = []  # others told of state changes (labs)
        # what besides jobs keeps an instance awake (its JupyterLab's busy kernels), and its
        # latest activity (epoch ms): lapis/notebooks/lab.py answers, once the server runs
        self.activity: Callable[[Compute], tuple[list[str], int]] = lambda c: ([], 0)

    def backend(self, c: Compute) -> ComputeBackend:
        return self.backends.for_compute(c)

    # --- state changes -----------------------------------------------------------------
    def move(
        self, c: Compute, to: S, reason: str, now: int, cause: str | None = None, **values: Any
    ) -> bool:
        """Change ``c``'s state if nobody changed it meanwhile (compare-and-set)."""
        if cause is not None:
            c.properties = {**c.properties, "cause": cause}
            values["properties"] = c.properties
        if not self.store.set_state(c.name, c.state, to.value, reason, now, **values):
            return False
        c.state, c.state_reason, c.state_changed_at = to.value, reason, now
        if "last_activity_at" in values:
            c.last_activity_at = values["last_activity_at"]
        self.wake()
        for tell in self.changed:
            tell()
        return True

    def call(self, c: Compute, hook: str, now: int) -> bool:
        """Run one backend lifecycle hook; on failure the compute is Failed, with why."""
        try:
            getattr(self.backend(c), hook)(c)
        except LapisError as exc:
            self.move(c, S.FAILED, exc.message, now)
            return False
        return True

    def forget(self, name: str) -> None:
        key = name.lower()
        self.busy_at.pop(key, None)
        self.windows.forget(key)

    # --- time passing ------------------------------------------------------------------
    def tick(
        self, now_ms: int, running: Mapping[str, int], queued: Mapping[str, int]
    ) -> builtins.list[str]:
        """Apply whatever is due at ``now_ms``; the names of computes whose state changed."""
        run = {k.lower(): v for k, v in running.items()}
        que = {k.lower(): v for k, v in queued.items()}
        changed = []
        for c in self.store.all():
            key = c.name.lower()
            before = c.state
            self._schedules_due(c, now_ms, run.get(key, 0))
            self._advance(c, now_ms, run.get(key, 0), que.get(key, 0))
            if c.state != before or c.state_changed_at == now_ms:
                changed.append(c.name)
        return changed

    def _ready(self, c: Compute, now: int) -> bool:
        try:
            return self.backend(c).ready(c)
        except LapisError as exc:
            self.move(c, S.FAILED, exc.message, now)
            return False

    def _advance(self, c: Compute, now: int, running: int, queued: int) -> None:
        cause = str(c.properties.get("cause") or "on request")
        if c.state == S.CREATING.value:
            if self._ready(c, now):
                self.move(c, S.RUNNING, "ready", now, last_activity_at=now)
        elif c.state == S.STARTING.value:
            if self._ready(c, now):
                self.move(c, S.RUNNING, f"started {cause}", now, last_activity_at=now)
        elif c.state == S.STOPPING.value and running == 0:
            if self.call(c, "stop", now):
                self.move(c, S.STOPPED, f"stopped {cause}", now)
        elif c.state == S.RESTARTING.value and running == 0:
            if not (self.call(c, "stop", now) and self.call(c, "start", now)):
                return
            if self._ready(c, now):
                self.move(c, S.RUNNING, f"restarted {cause}", now, last_activity_at=now)
            else:  # a slow backend: Starting until its nodes are up
                self.move(c, S.STARTING, f"restarting {cause}", now)
        elif c.state == S.RUNNING.value:
            try:
                self.backend(c).maintain(c)  # e.g. a cluster's scale, whoever is looking
            except LapisError as exc:
                log.warning("%s", exc.message)
            awake, seen = self.activity(c)
            self._idle_check(c, now, busy=running + queued > 0 or bool(awake), seen=seen)

    def _idle_check(self, c: Compute, now: int, busy: bool, seen: int = 0) -> None:
        """``seen``: the latest activity besides jobs (a kernel, a terminal, a request to
        its JupyterLab); it moves the idle clock like a job ending does."""
        key = c.name.lower()
        if seen > c.last_activity_at:
            if seen - c.last_activity_at >= ACTIVITY_PERSIST_MS:  # else only for this tick
                self.store.update(c.name, last_activity_at=seen)
            c.last_activity_at = seen
        if busy:
            self.busy_at[key] = now
            if now - c.last_activity_at >= ACTIVITY_PERSIST_MS:
                self.store.update(c.name, last_activity_at=now)
            return
        seen = self.busy_at.pop(key, 0)
        if seen > c.last_activity_at:  # busy → idle: store when the last job was seen
            self.store.update(c.name, last_activity_at=seen)
            c.last_activity_at = seen
        idle = c.idle_shutdown_seconds
        if idle and now - c.last_activity_at >= idle * 1000 and self.call(c, "stop", now):
            reason = f"idle for {fmt_seconds(idle)} (idle_time_before_shutdown)"
            self.move(c, S.STOPPED, reason, now, cause="by idle shutdown")

    def _schedules_due(self, c: Compute, now: int, running: int) -> None:
        if not c.schedules:
            return
        stored = int(c.properties.get("schedule_checked_at") or c.created_at)
        fired, persist = self.windows.fired(c.name.lower(), c.schedules, stored, now)
        for s in fired:
            self._fire(c, s, now, running)
        if persist:
            c.properties = {**c.properties, "schedule_checked_at": now}
            self.store.update(c.name, properties=c.properties)

    def _fire(self, c: Compute, s: dict[str, Any], now: int, running: int) -> None:
        cause = f"by schedule '{s['cron']}' ({s['time_zone']})"
        if s["action"] == "stop" and c.state not in (S.STOPPED.value, S.STOPPING.value):
            self.move(c, S.STOPPING, stopping_reason(cause, running), now, cause=cause)
        elif (
            s["action"] == "start"
            and c.state in (S.STOPPED.value, S.FAILED.value)
            and self.move(c, S.STARTING, f"starting {cause}", now, cause=cause)
        ):
            self.call(c, "start", now)
