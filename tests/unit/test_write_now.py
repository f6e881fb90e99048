"""Single tracking calls written on the caller's thread (``Database.write_now``).

The server tries this on its event loop before handing a call to a worker thread;
it must never wait for the write lock, must commit before it returns (the caller
acknowledges right after), and must leave nothing behind when the write fails.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lapis.entities.tracking import Point
from lapis.errors import InvalidParameterValue, ResourceDoesNotExist
from lapis.store.sql.engine import Database
from lapis.tracking.service import TrackingService


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path}/lapis.db")
    db.migrate()
    yield db
    db.dispose()


def _points(n: int, key: str = "loss") -> list[Point]:
    return [Point(key, float(i), 1_700_000_000_000 + i, i) for i in range(n)]


def test_a_write_now_is_committed_when_it_returns(sqlite_db: Database, tmp_path: Path) -> None:
    tracking = TrackingService(sqlite_db)
    run = tracking.create_run(tracking.create_experiment("now"))
    assert tracking.log_metrics_now(run.info.run_id, _points(3))
    other = sqlite3.connect(tmp_path / "lapis.db")  # another connection sees it at once
    assert other.execute("SELECT count(*) FROM metrics").fetchone() == (3,)
    history, _ = tracking.metric_history(run.info.run_id, "loss")
    assert [m.value for m in history] == [0.0, 1.0, 2.0]


def test_it_never_waits_for_the_write_lock(sqlite_db: Database) -> None:
    tracking = TrackingService(sqlite_db)
    run = tracking.create_run(tracking.create_experiment("busy"))
    held, release = threading.Event(), threading.Event()

    def writer() -> None:
        with sqlite_db.write():
            held.set()
            release.wait(10)

    t = threading.Thread(target=writer)
    t.start()
    assert held.wait(10)
    try:
        assert tracking.log_metrics_now(run.info.run_id, _points(1)) is False
    finally:
        release.set()
        t.join()
    history, _ = tracking.metric_history(run.info.run_id, "loss")
    assert history == []  # nothing was written: the caller goes the usual way
    tracking.log_batch(run.info.run_id, _points(1))
    assert len(tracking.metric_history(run.info.run_id, "loss")[0]) == 1


def test_refusals_are_the_same_and_leave_nothing(sqlite_db: Database) -> None:
    tracking = TrackingService(sqlite_db)
    run = tracking.create_run(tracking.create_experiment("gone"))
    with pytest.raises(ResourceDoesNotExist, match="not found"):
        tracking.log_metrics_now("f" * 32, _points(1))
    tracking.delete_run(run.info.run_id)
    with pytest.raises(InvalidParameterValue, match="must be in the 'active' state"):
        tracking.log_metrics_now(run.info.run_id, _points(1))
    with pytest.raises(InvalidParameterValue):
        tracking.log_metrics_now(run.info.run_id, _points(1, key="../bad"))
    assert sqlite_db.write_now(lambda c: c.execute("SELECT count(*) FROM metrics").fetchone()) == (
        True,
        (0,),
    )


def test_its_connection_leaves_checkpoints_to_a_background_thread(sqlite_db: Database) -> None:
    done, mode = sqlite_db.write_now(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone())
    assert done and mode == (0,)
