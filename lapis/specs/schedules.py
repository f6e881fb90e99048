"""Start/stop schedules of compute instances, evaluated with ``croniter``.

A schedule is stored normalised: ``{"action", "state", "cron", "time_zone",
"start_time", "trigger"}`` where ``cron`` is a five-field expression evaluated
in ``time_zone`` (an IANA name; "UTC" by default), ``start_time`` is epoch ms
or None, and ``trigger`` is what the user wrote (shown back to them). Azure's
``recurrence`` triggers are translated to the equivalent cron expression, so
only one evaluator exists. The service asks one question on every tick: did
a fire time fall in ``(after, until]``?
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter  # type: ignore[import-untyped,unused-ignore]  # typed from croniter 7

from lapis.errors import InvalidParameterValue

Path = tuple[str, ...]
ErrorFn = Callable[[Path, str], InvalidParameterValue]

ACTIONS = ("start", "stop")
STATES = ("enabled", "disabled")
TRIGGER_KEYS = {
    "cron": {"type", "expression", "start_time", "time_zone"},
    "recurrence": {"type", "frequency", "interval", "schedule", "start_time", "time_zone"},
}
SCHEDULE_KEYS = {"action", "state", "trigger"}
WEEK_DAYS = {
    "sunday": 0,
    "monday": 1,
    "tuesday": 2,
    "wednesday": 3,
    "thursday": 4,
    "friday": 5,
    "saturday": 6,
}


def iana_zone(name: str) -> str:
    """An IANA zone name for ``name``, which may be a Windows one as Azure's schedules take
    it (``Pacific Standard Time`` → ``America/Los_Angeles``, by CLDR's table)."""
    if name.upper() == "UTC":
        return "UTC"
    from tzlocal.windows_tz import win_tz  # CLDR's windowsZones table, as data

    return win_tz.get(name.strip(), name)


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(iana_zone(name))


def parse_schedule(raw: Any, path: Path, err: ErrorFn) -> dict[str, Any]:
    """One entry of ``schedules.compute_start_stop``, checked and normalised."""
    if not isinstance(raw, Mapping):
        raise err(path, f"must be a mapping with action, state and trigger, got {raw!r}")
    for key in raw:
        if key not in SCHEDULE_KEYS:
            raise err(
                (*path, str(key)), f"is not allowed here; use {', '.join(sorted(SCHEDULE_KEYS))}"
            )
    action = str(raw.get("action", "")).lower()
    if action not in ACTIONS:
        raise err((*path, "action"), f"must be start or stop, got {raw.get('action')!r}")
    state = str(raw.get("state", "enabled")).lower()
    if state not in STATES:
        raise err((*path, "state"), f"must be enabled or disabled, got {raw.get('state')!r}")
    return {
        "action": action,
        "state": state,
        **parse_trigger(raw.get("trigger"), (*path, "trigger"), err),
    }


def parse_trigger(
    trigger: Any, tpath: Path, err: ErrorFn, allow_end: bool = False
) -> dict[str, Any]:
    """A ``cron`` or ``recurrence`` trigger, checked and normalised to ``{"cron",
    "time_zone", "start_time", "end_time", "trigger"}`` (compute schedules and job
    schedules share it; only job schedules take ``end_time``)."""
    if not isinstance(trigger, Mapping):
        raise err(tpath, "is required: {type: cron, expression: '0 18 * * 1-5'}")
    kind = str(trigger.get("type", "")).lower()
    if kind not in TRIGGER_KEYS:
        raise err((*tpath, "type"), f"must be cron or recurrence, got {trigger.get('type')!r}")
    keys = TRIGGER_KEYS[kind] | ({"end_time"} if allow_end else set())
    for key in trigger:
        if key not in keys:
            raise err((*tpath, str(key)), f"is not allowed in a {kind} trigger; use "
                                          f"{', '.join(sorted(keys))}")  # fmt: skip
    tz_name = trigger.get("time_zone", "UTC")
    try:
        if not isinstance(tz_name, str):
            raise ZoneInfoNotFoundError(tz_name)
        zone = _zone(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise err(
            (*tpath, "time_zone"),
            f"unknown time zone {tz_name!r}: use 'UTC', an IANA name such as 'Europe/Berlin' "
            "or a Windows one such as 'W. Europe Standard Time'",
        ) from None
    tz_name = iana_zone(tz_name)
    if kind == "cron":
        expr = trigger.get("expression")
        if not isinstance(expr, str) or len(expr.split()) != 5 or not croniter.is_valid(expr):
            raise err(
                (*tpath, "expression"),
                f"must be a five-field cron expression like '0 18 * * 1-5', got {expr!r}",
            )
        cron = expr.strip()
    else:
        cron = recurrence_to_cron(trigger, tpath, err)
    start_ms = end_ms = None
    if trigger.get("start_time") is not None:
        start_ms = _start_time(trigger["start_time"], zone, (*tpath, "start_time"), err)
    if trigger.get("end_time") is not None:
        end_ms = _start_time(trigger["end_time"], zone, (*tpath, "end_time"), err)
        if start_ms is not None and end_ms <= start_ms:
            raise err((*tpath, "end_time"), "must be after start_time")
    return {
        "cron": cron,
        "time_zone": "UTC" if tz_name.upper() == "UTC" else tz_name,
        "start_time": start_ms,
        "end_time": end_ms,
        "trigger": {k: v.isoformat() if isinstance(v, datetime) else v for k, v in trigger.items()},
    }


def _start_time(value: Any, zone: ZoneInfo, path: Path, err: ErrorFn) -> int:
    if isinstance(value, datetime):
        when = value
    else:
        try:
            when = datetime.fromisoformat(str(value))
        except ValueError:
            raise err(
                path, f"must be an ISO 8601 time like 2024-05-01T08:00:00, got {value!r}"
            ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    return int(when.timestamp() * 1000)


def _int_list(value: Any, low: int, high: int, path: Path, err: ErrorFn) -> list[int]:
    items = value if isinstance(value, list) else [value]
    out = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise err(path, f"must be integers from {low} to {high}, got {value!r}")
        out.append(v)
    return sorted(set(out))


def recurrence_to_cron(trigger: Mapping[str, Any], path: Path, err: ErrorFn) -> str:
    """Azure's ``recurrence`` trigger as the cron expression that fires at the same times."""
    freq = str(trigger.get("frequency", "")).lower()
    interval = trigger.get("interval", 1)
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise err((*path, "interval"), f"must be a positive integer, got {interval!r}")
    sched = trigger.get("schedule") or {}
    spath = (*path, "schedule")
    if not isinstance(sched, Mapping):
        raise err(spath, "must be a mapping with hours, minutes and week_days")
    for key in sched:
        if key not in {"hours", "minutes", "week_days", "month_days"}:
            raise err((*spath, str(key)), "is not allowed; use hours, minutes, week_days")
    if "month_days" in sched:
        raise err((*spath, "month_days"), "is not supported by Lapis; use a cron trigger")
    minutes = _int_list(sched.get("minutes", [0]), 0, 59, (*spath, "minutes"), err)
    hours = _int_list(sched.get("hours", [0]), 0, 23, (*spath, "hours"), err)
    days = "*"
    if "week_days" in sched:
        raw_days = (
            sched["week_days"] if isinstance(sched["week_days"], list) else [sched["week_days"]]
        )
        try:
            days = ",".join(str(n) for n in sorted({WEEK_DAYS[str(d).lower()] for d in raw_days}))
        except KeyError:
            raise err(
                (*spath, "week_days"), f"must be day names like monday, got {sched['week_days']!r}"
            ) from None
    m, h = ",".join(map(str, minutes)), ",".join(map(str, hours))
    if freq == "minute":
        return f"*/{interval} * * * *"
    if freq == "hour":
        return f"{m} */{interval} * * *"
    if freq in ("day", "week"):
        if interval != 1:
            raise err(
                (*path, "interval"),
                f"a {freq}ly recurrence with interval {interval} is not supported; use a cron "
                "trigger",
            )
        if freq == "day" and days != "*":
            raise err((*spath, "week_days"), "needs frequency: week")
        return f"{m} {h} * * {days}"
    raise err(
        (*path, "frequency"),
        f"must be minute, hour, day or week, got {trigger.get('frequency')!r} (month: use cron)",
    )


def next_fire(schedule: Mapping[str, Any], after_ms: int) -> int | None:
    """The first fire time (epoch ms) strictly after ``after_ms``; None when disabled."""
    if schedule.get("state", "enabled") != "enabled":
        return None
    start = schedule.get("start_time")
    if start is not None and start - 1 > after_ms:
        after_ms = start - 1
    zone = _zone(str(schedule.get("time_zone") or "UTC"))
    base = datetime.fromtimestamp(after_ms / 1000, tz=UTC).astimezone(zone)
    nxt = int(croniter(str(schedule["cron"]), base).get_next(datetime).timestamp() * 1000)
    end = schedule.get("end_time")
    return None if end is not None and nxt > end else nxt


def fires_between(schedule: Mapping[str, Any], after_ms: int, until_ms: int) -> bool:
    """Whether the schedule fires in the window ``(after_ms, until_ms]``."""
    nxt = next_fire(schedule, after_ms)
    return nxt is not None and nxt <= until_ms


def next_action(
    schedules: list[dict[str, Any]], after_ms: int
) -> tuple[int, dict[str, Any]] | None:
    """The soonest (time, schedule) among enabled schedules, for ``lapis compute show``."""
    best: tuple[int, dict[str, Any]] | None = None
    for s in schedules:
        t = next_fire(s, after_ms)
        if t is not None and (best is None or t < best[0]):
            best = (t, s)
    return best


class ScheduleWindows:
    """Which schedules fired since the last look, per instance, cheaply.

    The soonest fire time is cached, so a tick with nothing due costs a dict
    lookup, not a croniter per schedule. ``stored`` is the last evaluated time
    the caller persisted; after a server restart the window opens there, but
    never more than ``lookback_ms`` back: a trigger missed by longer is not
    caught up late (stopping an instance hours after 18:00 would surprise).
    """

    def __init__(self, lookback_ms: int = 60_000, persist_every_ms: int = 30_000) -> None:
        self.lookback_ms = lookback_ms
        self.persist_every_ms = persist_every_ms
        self._checked: dict[str, int] = {}
        self._due: dict[str, int | None] = {}

    def forget(self, key: str, keep_window: bool = False) -> None:
        self._due.pop(key, None)
        if not keep_window:
            self._checked.pop(key, None)

    def fired(
        self, key: str, schedules: list[dict[str, Any]], stored: int, now: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """Schedules that fired in (last look, now], oldest first, and whether to persist now."""
        after = self._checked.get(key)
        if after is None:
            after = max(stored, now - self.lookback_ms)
        if after >= now:
            return [], False
        if key not in self._due:
            times = [t for t in (next_fire(s, after) for s in schedules) if t is not None]
            self._due[key] = min(times) if times else None
        self._checked[key] = now
        due = self._due[key]
        if due is None or due > now:
            return [], now - stored >= self.persist_every_ms
        self._due.pop(key, None)
        hits = sorted(
            ((t, i) for i, s in enumerate(schedules) if (t := next_fire(s, after)) is not None),
        )
        return [schedules[i] for t, i in hits if t <= now], True
