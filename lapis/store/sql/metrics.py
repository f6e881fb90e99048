"""Metric points: the ingest hot path and the history reads.

Writes bypass SQLAlchemy's statement compilation and hand tuples straight to
the driver's ``executemany`` — for SQLite that is several hundred thousand rows
a second, which is what lets one native-SDK process stream 200k points/s. The
unique index on the whole point makes a resent batch harmless.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection

from lapis.entities.tracking import Metric
from lapis.store.sql.engine import Database


class Point(NamedTuple):
    key: str
    value: float
    timestamp: int
    step: int
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


_COLS = "run_uuid, key, step, timestamp, value, is_nan, model_id, dataset_name, dataset_digest"

_SQL = {
    "sqlite": {
        "insert": f"INSERT OR IGNORE INTO metrics ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "latest": (
            "INSERT INTO latest_metrics (run_uuid, key, step, timestamp, value, is_nan) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_uuid, key) DO UPDATE SET "
            "step = excluded.step, timestamp = excluded.timestamp, value = excluded.value, "
            "is_nan = excluded.is_nan WHERE (excluded.step, excluded.timestamp, excluded.value) "
            "> (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)"
        ),
    },
    "postgresql": {
        "insert": (
            f"INSERT INTO metrics ({_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING"
        ),
        "latest": (
            "INSERT INTO latest_metrics (run_uuid, key, step, timestamp, value, is_nan) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (run_uuid, key) DO UPDATE SET "
            "step = excluded.step, timestamp = excluded.timestamp, value = excluded.value, "
            "is_nan = excluded.is_nan WHERE (excluded.step, excluded.timestamp, excluded.value) "
            "> (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)"
        ),
    },
}


def _row(run_id: str, p: Point) -> tuple[Any, ...]:
    v = p.value
    if v != v:  # NaN is stored as 0 with a flag: not every database keeps NaN in a REAL
        return (
            run_id,
            p.key,
            p.step,
            p.timestamp,
            0.0,
            True,
            p.model_id,
            p.dataset_name,
            p.dataset_digest,
        )
    return (
        run_id,
        p.key,
        p.step,
        p.timestamp,
        v,
        False,
        p.model_id,
        p.dataset_name,
        p.dataset_digest,
    )


class MetricStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._sql = _SQL["sqlite" if db.is_sqlite else "postgresql"]

    def insert(self, conn: Connection, run_id: str, points: Sequence[Point]) -> None:
        """Append points and move each key's latest value forward, in the caller's transaction."""
        if not points:
            return
        self._write(conn, [_row(run_id, p) for p in points])

    def insert_columns(
        self,
        conn: Connection,
        run_id: str,
        keys: Sequence[str],
        values: Sequence[float],
        steps: Sequence[int],
        timestamps: Sequence[int],
    ) -> None:
        """The native SDK's columnar batch: same effect as ``insert`` without building Points."""
        isnan = math.isnan
        rows = [
            (run_id, k, s, t, 0.0, True, None, None, None)
            if isnan(v)
            else (run_id, k, s, t, v, False, None, None, None)
            for k, v, s, t in zip(keys, values, steps, timestamps, strict=True)
        ]
        if rows:
            self._write(conn, rows)

    def _write(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        conn.exec_driver_sql(self._sql["insert"], rows)
        # Only the newest point of each key in this batch can move latest_metrics.
        best: dict[str, tuple[Any, ...]] = {}
        for r in rows:
            cur = best.get(r[1])
            if cur is None or (r[2], r[3], r[4]) > (cur[2], cur[3], cur[4]):
                best[r[1]] = r
        conn.exec_driver_sql(self._sql["latest"], [r[:6] for r in best.values()])

    def history(
        self, run_id: str, key: str, offset: int = 0, limit: int | None = None
    ) -> list[Metric]:
        sql = (
            "SELECT value, timestamp, step, is_nan FROM metrics WHERE run_uuid = {p} AND key = {p} "
            "ORDER BY step, timestamp, value"
        )
        p = "?" if self.db.is_sqlite else "%s"
        sql = sql.format(p=p)
        args: tuple[object, ...] = (run_id, key)
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        nan = float("nan")
        with self.db.read() as conn:
            rows = conn.exec_driver_sql(sql, args).all()
        return [Metric(key, nan if n else v, t, s, run_id) for v, t, s, n in rows]

    def sampled(
        self,
        run_id: str,
        key: str,
        max_results: int,
        start_step: int | None,
        end_step: int | None,
    ) -> list[Metric]:
        """Up to ``max_results`` points evenly spread over the history, first and last kept.

        The database numbers the rows in index order and returns only the chosen
        positions, so a chart of a million-point series costs one index scan and
        a few hundred rows on the wire.
        """
        p = "?" if self.db.is_sqlite else "%s"
        where = f"run_uuid = {p} AND key = {p}"
        args: list[object] = [run_id, key]
        if start_step is not None and end_step is not None:
            where += f" AND step >= {p} AND step <= {p}"
            args += [start_step, end_step]
        with self.db.read() as conn:
            total = conn.exec_driver_sql(
                f"SELECT COUNT(*) FROM metrics WHERE {where}", tuple(args)
            ).scalar_one()
            if total == 0:
                return []
            if max_results <= 1:
                positions = [total - 1]
            elif total <= max_results:
                positions = list(range(total))
            else:
                positions = sorted(
                    {round(i * (total - 1) / (max_results - 1)) for i in range(max_results)}
                )
            if len(positions) == total:
                rows = conn.exec_driver_sql(
                    f"SELECT value, timestamp, step, is_nan FROM metrics WHERE {where} "
                    "ORDER BY step, timestamp, value",
                    tuple(args),
                ).all()
            else:
                wanted = ",".join(str(i) for i in positions)
                rows = conn.exec_driver_sql(
                    "SELECT value, timestamp, step, is_nan FROM (SELECT value, timestamp, step, "
                    "is_nan, ROW_NUMBER() OVER (ORDER BY step, timestamp, value) - 1 AS rn "
                    f"FROM metrics WHERE {where}) AS numbered WHERE rn IN ({wanted}) ORDER BY rn",
                    tuple(args),
                ).all()
        nan = float("nan")
        return [Metric(key, nan if n else v, t, s, run_id) for v, t, s, n in rows]
