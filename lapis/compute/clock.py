"""Time passing for compute instances: pending transitions, idle shutdown, schedules.

:class:`InstanceClock` is the part of :class:`lapis.compute.service.ComputeService`
that the job scheduler drives through ``tick`` (about every 100 ms, with the
running and queued job counts per compute); the service's docstring has the
lifecycle and the terms (*activity*, *idle deadline*, a schedule's *window*).
It is a mixin so that the service's state changes (``_move``) stay one code path.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from lapis.compute.schedules import ScheduleWindows
from lapis.entities.compute import Compute, ComputeState
from lapis.store.sql.computes import ComputeStore

S = ComputeState
ACTIVITY_PERSIST_MS = 30_000  # how stale the stored activity of a busy instance may get


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


class InstanceClock:
    store: ComputeStore
    _busy_at: dict[str, int]
    _windows: ScheduleWindows

    def _move(
        self, c: Compute, to: S, reason: str, now: int, cause: str | None = None, **values: Any
    ) -> bool:
        raise NotImplementedError  # ComputeService's

    def tick(
        self, now_ms: int, running: Mapping[str, int], queued: Mapping[str, int]
    ) -> builtins.list[str]:
        """Apply whatever is due at ``now_ms``; the names of instances whose state changed."""
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

    def _advance(self, c: Compute, now: int, running: int, queued: int) -> None:
        cause = str(c.properties.get("cause") or "on request")
        if c.state == S.CREATING.value:
            self._move(c, S.RUNNING, "ready", now, last_activity_at=now)
        elif c.state == S.STARTING.value:
            self._move(c, S.RUNNING, f"started {cause}", now, last_activity_at=now)
        elif c.state == S.STOPPING.value and running == 0:
            self._move(c, S.STOPPED, f"stopped {cause}", now)
        elif c.state == S.RESTARTING.value and running == 0:
            self._move(c, S.RUNNING, f"restarted {cause}", now, last_activity_at=now)
        elif c.state == S.RUNNING.value:
            self._idle_check(c, now, busy=running + queued > 0)

    def _idle_check(self, c: Compute, now: int, busy: bool) -> None:
        key = c.name.lower()
        if busy:
            self._busy_at[key] = now
            if now - c.last_activity_at >= ACTIVITY_PERSIST_MS:
                self.store.update(c.name, last_activity_at=now)
            return
        seen = self._busy_at.pop(key, 0)
        if seen > c.last_activity_at:  # busy → idle: store when the last job was seen
            self.store.update(c.name, last_activity_at=seen)
            c.last_activity_at = seen
        idle = c.idle_shutdown_seconds
        if idle and now - c.last_activity_at >= idle * 1000:
            reason = f"idle for {fmt_seconds(idle)} (idle_time_before_shutdown)"
            self._move(c, S.STOPPED, reason, now, cause="by idle shutdown")

    def _schedules_due(self, c: Compute, now: int, running: int) -> None:
        if not c.schedules:
            return
        stored = int(c.properties.get("schedule_checked_at") or c.created_at)
        fired, persist = self._windows.fired(c.name.lower(), c.schedules, stored, now)
        for s in fired:
            self._fire(c, s, now, running)
        if persist:
            c.properties = {**c.properties, "schedule_checked_at": now}
            self.store.update(c.name, properties=c.properties)

    def _fire(self, c: Compute, s: dict[str, Any], now: int, running: int) -> None:
        cause = f"by schedule '{s['cron']}' ({s['time_zone']})"
        if s["action"] == "stop" and c.state not in (S.STOPPED.value, S.STOPPING.value):
            self._move(c, S.STOPPING, stopping_reason(cause, running), now, cause=cause)
        elif s["action"] == "start" and c.state in (S.STOPPED.value, S.FAILED.value):
            self._move(c, S.STARTING, f"starting {cause}", now, cause=cause)
