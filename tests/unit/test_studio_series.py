"""Server-side downsampling for the studio's charts: every bucket's min and max survive."""

from __future__ import annotations

import math
import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert

from lapis.store.sql.engine import Database
from lapis.store.sql.series import Bucket, SeriesReader, bucket_points, downsample, emit
from lapis.store.sql.tables import latest_metrics, metrics


def test_min_and_max_of_every_bucket_are_kept_and_count_is_bounded() -> None:
    rng = random.Random(7)
    xs = list(range(100_000))
    ys = [math.sin(i / 500) + rng.gauss(0, 0.1) for i in xs]
    ys[31_337] = 50.0  # a spike striding would drop
    ys[77_001] = -50.0
    out_x, out_y = downsample(xs, ys, 1000)
    assert len(out_x) == len(out_y) <= 1000
    assert 50.0 in out_y and -50.0 in out_y
    assert out_x == sorted(out_x) and out_x[0] == 0 and out_x[-1] == 99_999
    buckets = bucket_points(xs, ys, 500)
    assert len(buckets) == 500 and sum(b.n for b in buckets) == len(xs)
    kept = set(out_y)
    for b in buckets:
        assert b.low in kept and b.high in kept
        lo, hi = b.x_first, b.x_last
        assert b.low == min(ys[lo : hi + 1]) and b.high == max(ys[lo : hi + 1])


def test_short_series_are_returned_exactly() -> None:
    assert downsample([1, 2, 3], [0.5, 0.1, 0.9], 1000) == ([1, 2, 3], [0.5, 0.1, 0.9])


def test_emit_continues_the_line_instead_of_zigzagging() -> None:
    falling = [Bucket(0, 9, 8.0, 10.0, 10), Bucket(10, 19, 6.0, 8.0, 10)]
    assert emit(falling) == ([0, 9, 10, 19], [8.0, 10.0, 8.0, 6.0])
    assert emit([Bucket(5, 5, 1.0, 1.0, 1)]) == ([5], [1.0])


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'm.db'}")
        db.migrate()
        yield db
        db.dispose()
        return
    pg = os.environ.get("LAPIS_TEST_DATABASE_URL")
    if not pg:
        pytest.skip("LAPIS_TEST_DATABASE_URL not set: PostgreSQL store tests skipped")
    import psycopg

    name = f"lapis_t_{uuid.uuid4().hex[:12]}"
    admin = pg.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = Database(pg.rsplit("/", 1)[0] + f"/{name}")
    try:
        db.migrate()
        yield db
    finally:
        db.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_sql_reader_matches_the_pure_function(database: Database) -> None:
    """The store's bucketing (range scans and seeks) equals the pure-Python bucketing."""
    rng = random.Random(3)
    xs = list(range(0, 20_000, 2))
    ys = [rng.random() for _ in xs]
    point = {"series_id": 1, "is_nan": False}
    with database.write() as conn:
        conn.execute(
            insert(latest_metrics).values(
                series_id=1, run_uuid="r1", key="loss", step=0, timestamp=0, value=0, is_nan=False
            )
        )
        rows = [
            point | {"step": x, "timestamp": 1000 + x, "value": y}
            for x, y in zip(xs, ys, strict=True)
        ]
        rows.append(point | {"step": 5, "timestamp": 1005, "value": 0.0, "is_nan": True})
        conn.execute(insert(metrics), rows)  # the NaN point above is left out
    reader = SeriesReader(database)
    got = reader.read("r1", ["loss", "absent"], "step", 200)
    assert list(got) == ["loss"]
    want_x, want_y = emit(bucket_points(xs, ys, 100))
    assert got["loss"]["x"] == want_x and got["loss"]["y"] == want_y
    assert got["loss"]["total"] == len(xs) and len(want_x) <= 200
    window = reader.read("r1", ["loss"], "step", 200, (100, 199))
    assert window["loss"]["x"] == xs[50:100]  # a zoomed window at full resolution
    timed = reader.read("r1", ["loss"], "time", 200)
    assert timed["loss"]["x"][0] == 1000 and timed["loss"]["x"][-1] == 1000 + xs[-1]
    assert max(timed["loss"]["y"]) == max(ys) and min(timed["loss"]["y"]) == min(ys)
