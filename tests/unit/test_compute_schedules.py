"""Start/stop schedules: parsing Azure's triggers and deciding what fired when."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lapis.errors import InvalidParameterValue
from lapis.specs.compute import parse_duration
from lapis.specs.schedules import (
    ScheduleWindows,
    fires_between,
    next_action,
    next_fire,
    parse_schedule,
)


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def err(path: tuple[str, ...], message: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"{'.'.join(path)}: {message}")


def cron(expr: str, action: str = "stop", **trigger: object) -> dict[str, object]:
    raw = {"action": action, "trigger": {"type": "cron", "expression": expr, **trigger}}
    return parse_schedule(raw, ("s",), err)


def test_cron_trigger_is_normalised_with_utc_by_default() -> None:
    s = cron("0 18 * * 1-5")
    assert s["cron"] == "0 18 * * 1-5" and s["time_zone"] == "UTC" and s["state"] == "enabled"
    # 2024-05-01 is a Wednesday
    assert next_fire(s, ms("2024-05-01T12:00:00")) == ms("2024-05-01T18:00:00")
    assert next_fire(s, ms("2024-05-03T18:00:00")) == ms("2024-05-06T18:00:00")  # Fri → Mon


def test_time_zone_moves_the_fire_time() -> None:
    s = cron("0 18 * * *", time_zone="Europe/Berlin")  # CEST is UTC+2 in May
    assert next_fire(s, ms("2024-05-01T12:00:00")) == ms("2024-05-01T16:00:00")
    s = cron("0 18 * * *", time_zone="Europe/Berlin")  # CET is UTC+1 in January
    assert next_fire(s, ms("2024-01-10T12:00:00")) == ms("2024-01-10T17:00:00")


def test_start_time_and_disabled_state() -> None:
    s = cron("0 * * * *", start_time="2024-05-02T00:00:00")
    assert next_fire(s, ms("2024-05-01T10:30:00")) == ms("2024-05-02T00:00:00")
    off = parse_schedule(
        {
            "action": "start",
            "state": "disabled",
            "trigger": {"type": "cron", "expression": "* * * * *"},
        },
        ("s",),
        err,
    )
    assert next_fire(off, 0) is None


def test_fires_between_is_a_half_open_window() -> None:
    s = cron("0 18 * * *")
    six = ms("2024-05-01T18:00:00")
    assert fires_between(s, six - 1, six)
    assert not fires_between(s, six, six + 50_000)
    assert not fires_between(s, six - 1000, six - 1)


def test_recurrence_triggers_become_cron() -> None:
    def rec(**trigger: object) -> str:
        raw = {"action": "start", "trigger": {"type": "recurrence", **trigger}}
        return str(parse_schedule(raw, ("s",), err)["cron"])

    schedule = {"hours": [8], "minutes": [30], "week_days": ["Monday", "friday"]}
    assert rec(frequency="week", interval=1, schedule=schedule) == "30 8 * * 1,5"
    assert rec(frequency="day", schedule={"hours": [7, 19]}) == "0 7,19 * * *"
    assert rec(frequency="minute", interval=15) == "*/15 * * * *"
    with pytest.raises(InvalidParameterValue, match="month"):
        rec(frequency="month")
    with pytest.raises(InvalidParameterValue, match="interval 2 is not supported"):
        rec(frequency="day", interval=2)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (
            {"action": "pause", "trigger": {"type": "cron", "expression": "* * * * *"}},
            "start or stop",
        ),
        ({"action": "stop"}, "trigger' is required"),
        ({"action": "stop", "trigger": {"type": "cron", "expression": "61 * * * *"}}, "five-field"),
        ({"action": "stop", "trigger": {"type": "cron", "expression": "* * * *"}}, "five-field"),
        (
            {
                "action": "stop",
                "trigger": {
                    "type": "cron",
                    "expression": "* * * * *",
                    "time_zone": "Mars Standard Time",  # Windows names are taken; this is none
                },
            },
            "IANA",
        ),
        (
            {"action": "stop", "trigger": {"type": "cron", "expression": "* * * * *", "every": 1}},
            "not allowed",
        ),
        ({"action": "stop", "trigger": {"type": "weekly"}}, "cron or recurrence"),
    ],
)
def test_bad_schedules_say_what_is_wrong(raw: dict[str, object], needle: str) -> None:
    with pytest.raises(InvalidParameterValue) as exc:
        parse_schedule(
            raw, ("schedules",), lambda p, m: InvalidParameterValue(f"'{'.'.join(p)}' {m}")
        )
    assert needle in exc.value.message


def test_next_action_picks_the_soonest() -> None:
    stop, start = cron("0 18 * * *"), cron("0 8 * * *", action="start")
    when, which = next_action([stop, start], ms("2024-05-01T12:00:00")) or (0, {})
    assert when == ms("2024-05-01T18:00:00") and which["action"] == "stop"
    when, which = next_action([stop, start], ms("2024-05-01T19:00:00")) or (0, {})
    assert when == ms("2024-05-02T08:00:00") and which["action"] == "start"


def test_windows_fire_once_and_do_not_catch_up_old_triggers() -> None:
    s = [cron("0 18 * * *")]
    w = ScheduleWindows(lookback_ms=60_000, persist_every_ms=30_000)
    created = ms("2024-05-01T17:59:00")
    assert w.fired("a", s, created, created + 10_000) == ([], False)
    fired, persist = w.fired("a", s, created, ms("2024-05-01T18:00:00") + 100)
    assert fired == s and persist
    assert w.fired("a", s, created, ms("2024-05-01T18:00:30"))[0] == []
    # a fresh process (server restart) opens its window at most a minute back
    late = ScheduleWindows(lookback_ms=60_000)
    assert late.fired("a", s, created, ms("2024-05-01T18:05:00"))[0] == []
    soon = ScheduleWindows(lookback_ms=60_000)
    assert soon.fired("a", s, created, ms("2024-05-01T18:00:40"))[0] == s


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT30M", 1800),
        ("PT5S", 5),
        ("PT1H30M", 5400),
        ("P1DT2H", 93600),
        ("pt90s", 90),
        ("PT", None),
        ("30M", None),
    ],
)
def test_iso_durations(text: str, seconds: int | None) -> None:
    assert parse_duration(text) == seconds
