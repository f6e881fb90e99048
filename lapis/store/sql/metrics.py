"""Metric points: the ingest hot path and the history reads.

Writes bypass SQLAlchemy's statement compilation and hand tuples straight to
the driver's ``executemany``; points without a model or dataset link (nearly
all of them) bind six columns, not nine. The primary key over the whole point
makes a resent batch harmless.
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


_COLS = ("run_uuid", "key", "step", "timestamp", "value", "is_nan")
_LINKS = ("model_id", "dataset_name", "dataset_digest")


def _insert_sql(sqlite: bool, cols: Sequence[str]) -> str:
    marks = ", ".join(["?" if sqlite else "%s"] * len(cols))
    verb = "INSERT OR IGNORE" if sqlite else "INSERT"
    tail = "" if sqlite else " ON CONFLICT DO NOTHING"
    return f"{verb} INTO metrics ({', '.join(cols)}) VALUES ({marks}){tail}"


def _latest_sql(sqlite: bool) -> str:
    marks = ", ".join(["?" if sqlite else "%s"] * 6)
    return (
        f"INSERT INTO latest_metrics ({', '.join(_COLS)}) VALUES ({marks}) "
        "ON CONFLICT (run_uuid, key) DO UPDATE SET step = excluded.step, "
        "timestamp = excluded.timestamp, value = excluded.value, is_nan = excluded.is_nan "
        "WHERE (excluded.step, excluded.timestamp, excluded.value) "
        "> (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)"
    )


class MetricStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        sqlite = db.is_sqlite
        self._p = "?" if sqlite else "%s"
        self._insert = _insert_sql(sqlite, _COLS)
        self._insert_linked = _insert_sql(sqlite, _COLS + _LINKS)
        self._latest = _latest_sql(sqlite)

    def insert(self, conn: Connection, run_id: str, points: Sequence[Point]) -> None:
        """Append points and move each key's latest value forward, in the caller's transaction."""
        plain: list[tuple[Any, ...]] = []
        linked: list[tuple[Any, ...]] = []
        for p in points:
            v = p.value
            nan = v != v  # NaN is stored as 0 plus a flag: not every database keeps NaN
            row = (run_id, p.key, p.step, p.timestamp, 0.0 if nan else v, nan)
            if p.model_id or p.dataset_name or p.dataset_digest:
                linked.append((*row, p.model_id, p.dataset_name, p.dataset_digest))
            else:
                plain.append(row)
        if linked:
            conn.exec_driver_sql(self._insert_linked, linked)
        self._write(conn, plain, extra=linked)

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
            (run_id, k, s, t, 0.0, True) if isnan(v) else (run_id, k, s, t, v, False)
            for k, v, s, t in zip(keys, values, steps, timestamps, strict=True)
        ]
        self._write(conn, rows)

    def _write(
        self, conn: Connection, rows: list[tuple[Any, ...]], extra: Sequence[tuple[Any, ...]] = ()
    ) -> None:
        if rows:
            conn.exec_driver_sql(self._insert, rows)
        # Only the newest point of each key in this batch can move latest_metrics.
        best: dict[str, tuple[Any, ...]] = {}
        for group in (rows, extra):
            for r in group:
                cur = best.get(r[1])
                if cur is None or (r[2], r[3], r[4]) > (cur[2], cur[3], cur[4]):
                    best[r[1]] = r
        if best:
            conn.exec_driver_sql(self._latest, [r[:6] for r in best.values()])

    def history(
        self, run_id: str, key: str, offset: int = 0, limit: int | None = None
    ) -> list[Metric]:
        p = self._p
        sql = (
            f"SELECT value, timestamp, step, is_nan FROM metrics WHERE run_uuid = {p} "
            f"AND key = {p} ORDER BY step, timestamp, value"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        nan = float("nan")
        with self.db.read() as conn:
            rows = conn.exec_driver_sql(sql, (run_id, key)).all()
        return [Metric(key, nan if n else v, t, s, run_id) for v, t, s, n in rows]

    def sampled(
        self,
        run_id: str,
        key: str,
        max_results: int,
        start_step: int | None,
        end_step: int | None,
    ) -> list[Metric]:
        """Up to ``max_results`` points spread evenly over the series, first and last kept.

        When the series spans at least ``max_results`` steps, each sample is one
        index seek ("first point at or after step s") — a few hundred seeks cost
        milliseconds whatever the series length. Series crowded on few steps
        (``log_metric`` without a step puts everything on step 0) are sampled by
        rank instead, as MLflow does, which scans the series once.
        """
        p = self._p
        where = f"run_uuid = {p} AND key = {p}"
        args: tuple[Any, ...] = (run_id, key)
        if start_step is not None and end_step is not None:
            where += f" AND step >= {p} AND step <= {p}"
            args += (start_step, end_step)
        cols = "value, timestamp, step, is_nan"
        first_sql = (
            f"SELECT {cols} FROM metrics WHERE {where} ORDER BY step, timestamp, value LIMIT 1"
        )
        last_sql = (
            f"SELECT {cols} FROM metrics WHERE {where} "
            "ORDER BY step DESC, timestamp DESC, value DESC LIMIT 1"
        )
        with self.db.read() as conn:
            last = conn.exec_driver_sql(last_sql, args).first()
            if last is None:
                return []
            if max_results <= 1:
                rows = [tuple(last)]
            else:
                first = conn.exec_driver_sql(first_sql, args).first()
                assert first is not None
                lo, hi = first[2], last[2]
                if hi - lo + 1 >= max_results:
                    rows = self._seek_sample(conn, where, args, lo, hi, max_results, cols)
                    if not rows or rows[-1] != tuple(last):
                        rows.append(tuple(last))
                else:
                    rows = self._rank_sample(conn, where, args, max_results, cols)
        nan = float("nan")
        return [Metric(key, nan if n else v, t, s, run_id) for v, t, s, n in rows]

    def _seek_sample(
        self,
        conn: Connection,
        where: str,
        args: tuple[Any, ...],
        lo: int,
        hi: int,
        max_results: int,
        cols: str,
    ) -> list[tuple[Any, ...]]:
        sql = (
            f"SELECT {cols} FROM metrics WHERE {where} AND step >= {self._p} "
            "ORDER BY step, timestamp, value LIMIT 1"
        )
        span = hi - lo
        out: list[tuple[Any, ...]] = []
        seen_step: int | None = None
        raw = conn.connection.driver_connection
        cur = raw.cursor()  # type: ignore[union-attr]
        try:
            for i in range(max_results - 1):
                target = lo + (span * i) // (max_results - 1)
                if seen_step is not None and target <= seen_step:
                    target = seen_step + 1
                cur.execute(sql, (*args, target))
                row = cur.fetchone()
                if row is None or row[2] > hi:
                    break
                seen_step = row[2]
                out.append(tuple(row))
        finally:
            cur.close()
        return out

    def _rank_sample(
        self,
        conn: Connection,
        where: str,
        args: tuple[Any, ...],
        max_results: int,
        cols: str,
    ) -> list[tuple[Any, ...]]:
        total = conn.exec_driver_sql(
            f"SELECT COUNT(*) FROM metrics WHERE {where}", args
        ).scalar_one()
        if total <= max_results:
            return [
                tuple(r)
                for r in conn.exec_driver_sql(
                    f"SELECT {cols} FROM metrics WHERE {where} ORDER BY step, timestamp, value",
                    args,
                )
            ]
        wanted = ",".join(
            str(i)
            for i in sorted(
                {round(i * (total - 1) / (max_results - 1)) for i in range(max_results)}
            )
        )
        return [
            tuple(r)
            for r in conn.exec_driver_sql(
                f"SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER "
                f"(ORDER BY step, timestamp, value) - 1 AS rn FROM metrics WHERE {where}) AS n "
                f"WHERE rn IN ({wanted}) ORDER BY rn",
                args,
            )
        ]
