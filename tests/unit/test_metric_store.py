"""Contract tests of the metric store, run on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import itertools
import math

from lapis.entities.tracking import Point
from lapis.tracking.service import TrackingService


def test_latest_value_follows_step_then_timestamp(service: TrackingService) -> None:
    run = service.create_run("0").info.run_id
    service.log_batch(run, [Point("acc", 0.5, 100, 2), Point("acc", 0.9, 50, 1)])
    service.log_batch(run, [Point("acc", 0.1, 10, 1)])  # older step: latest stays
    latest = {m.key: m for m in service.get_run(run).metrics}
    assert latest["acc"].value == 0.5 and latest["acc"].step == 2
    service.log_batch(run, [Point("acc", 0.7, 200, 2)])  # same step, later time wins
    latest = {m.key: m for m in service.get_run(run).metrics}
    assert latest["acc"].value == 0.7


def test_resent_batch_is_deduplicated_and_nan_survives(service: TrackingService) -> None:
    run = service.create_run("0").info.run_id
    batch = [Point("loss", float(i), 1000 + i, i) for i in range(100)]
    batch.append(Point("loss", math.nan, 5000, 100))
    service.log_batch(run, batch)
    service.log_batch(run, batch)
    history, _ = service.metric_history(run, "loss")
    assert len(history) == 101
    assert math.isnan(history[-1].value)
    assert [p.step for p in history[:3]] == [0, 1, 2]


def test_columnar_batch_matches_point_batch(service: TrackingService) -> None:
    run = service.create_run("0").info.run_id
    n = service.log_columns(
        run, ["a", "b", "a"], [1.0, 2.0, 3.0], [0, 0, 1], [10, 10, 11], {"lr": "0.1"}, {"t": "x"}
    )
    assert n == 3
    got = service.get_run(run)
    assert {m.key: m.value for m in got.metrics} == {"a": 3.0, "b": 2.0}
    assert got.params == {"lr": "0.1"} and got.tags["t"] == "x"


def test_sampled_history_keeps_ends_and_bounds_size(service: TrackingService) -> None:
    run = service.create_run("0").info.run_id
    keys = ["s"] * 5000
    service.log_columns(
        run, keys, [float(i) for i in range(5000)], list(range(5000)), [1] * 5000, {}, {}
    )
    pts = service.metric_history_sampled([run], "s", 320, None, None)
    steps = [p.step for p in pts]
    assert len(pts) <= 320 and steps[0] == 0 and steps[-1] == 4999
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    # evenly spread: no gap much wider than the ideal one
    gaps = [b - a for a, b in itertools.pairwise(steps)]
    assert max(gaps) <= 2 * (4999 / 319)
    window = service.metric_history_sampled([run], "s", 10, 100, 200)
    assert window[0].step == 100 and window[-1].step == 200 and len(window) <= 10


def test_sampled_history_on_a_single_step_samples_by_rank(service: TrackingService) -> None:
    run = service.create_run("0").info.run_id
    service.log_columns(
        run, ["z"] * 1000, [float(i) for i in range(1000)], [0] * 1000, list(range(1000)), {}, {}
    )
    pts = service.metric_history_sampled([run], "z", 50, None, None)
    assert len(pts) == 50
    assert pts[0].timestamp == 0 and pts[-1].timestamp == 999
