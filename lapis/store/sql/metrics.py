"""Metric points: the ingest hot path and the history reads.

Each (run, key) series gets an integer id in ``latest_metrics``; points carry
only that id, so the hot table's key is five numbers. Writes hand tuples to
the DB-API cursor's ``executemany`` without SQLAlchemy's statement layer, and
the primary key over the whole point makes a re-sent batch harmless.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Any

from sqlalchemy import Connection

from lapis.entities.tracking import Metric, Point
from lapis.store.sql.engine import Database

# (key, step, timestamp, stored value, is_nan): NaN is stored as 0 plus a flag,
# since not every database keeps NaN in a float column.
Row = tuple[str, int, int, float, bool]


def _newest(rows: Iterable[Row]) -> dict[str, Row]:
    """The newest point of each key, by (step, timestamp, value) as MLflow orders them."""
    best: dict[str, Row] = {}
    for r in rows:
        cur = best.get(r[0])
        if cur is None or (r[1], r[2], r[3]) > (cur[1], cur[2], cur[3]):
            best[r[0]] = r
    return best


class MetricStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        p = self._p = "?" if db.is_sqlite else "%s"
        ignore, conflict = ("OR IGNORE ", "") if db.is_sqlite else ("", " ON CONFLICT DO NOTHING")
        self._insert_points = (
            f"INSERT {ignore}INTO metrics (series_id, step, timestamp, value, is_nan) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}){conflict}"
        )
        self._insert_series = (
            f"INSERT {ignore}INTO latest_metrics (run_uuid, key, step, timestamp, value, is_nan) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}){conflict}"
        )
        self._advance_latest = (
            f"UPDATE latest_metrics SET step = {p}, timestamp = {p}, value = {p}, is_nan = {p} "
            f"WHERE series_id = {p} AND (step, timestamp, value) < ({p}, {p}, {p})"
        )
        self._insert_model_points = (
            f"INSERT {ignore}INTO model_metrics (model_id, run_uuid, key, step, timestamp, value, "
            f"is_nan, dataset_name, dataset_digest) VALUES ({', '.join([p] * 9)}){conflict}"
        )

    # --- writes --------------------------------------------------------------
    def insert(self, conn: Connection, run_id: str, points: Sequence[Point]) -> None:
        """Append points and move each key's latest value forward, in the caller's transaction."""
        rows: list[Row] = []
        linked: list[tuple[Any, ...]] = []
        for p in points:
            v = p.value
            nan = v != v
            row = (p.key, p.step, p.timestamp, 0.0 if nan else v, nan)
            rows.append(row)
            if p.model_id:
                linked.append((p.model_id, run_id, *row, p.dataset_name, p.dataset_digest))
        self._write(conn, run_id, rows)
        if linked:
            self._cursor(conn).executemany(self._insert_model_points, linked)

    def insert_raw(self, dbapi: Any, run_id: str, points: Sequence[Point]) -> None:
        """``insert`` on a driver connection (``Database.write_raw``), for points without
        a logged model (the single-call path)."""
        rows: list[Row] = []
        for p in points:
            v = p.value
            nan = v != v
            rows.append((p.key, p.step, p.timestamp, 0.0 if nan else v, nan))
        cur = dbapi.cursor()
        try:
            self._write_rows(cur, run_id, rows)
        finally:
            cur.close()

    def insert_columns(
        self,
        conn: Connection,
        run_id: str,
        keys: Sequence[str],
        values: Sequence[float],
        steps: Sequence[int],
        timestamps: Sequence[int],
    ) -> None:
        """The native SDK's columnar batch: same effect as ``insert`` without building Points.

        A batch of one key without NaN — what a training loop sends — streams
        straight from the columns into ``executemany`` with no per-point tuple
        built in Python, and its newest point is one C-level ``max``.
        """
        if not keys:
            return
        isnan = math.isnan
        single = keys[0] if keys.count(keys[0]) == len(keys) else None
        if single is None or any(isnan(v) for v in values):
            rows = [
                (k, s, t, 0.0, True) if isnan(v) else (k, s, t, v, False)
                for k, v, s, t in zip(keys, values, steps, timestamps, strict=True)
            ]
            self._write(conn, run_id, rows)
            return
        step, ts, value = max(zip(steps, timestamps, values, strict=True))
        cur = self._cursor(conn)
        try:
            sid = self._touch_series(cur, run_id, {single: (single, step, ts, value, False)})[
                single
            ]
            self._put_points(cur, zip(repeat(sid), steps, timestamps, values, repeat(False)))
        finally:
            cur.close()

    @staticmethod
    def _cursor(conn: Connection) -> Any:
        return conn.connection.driver_connection.cursor()

    def _write(self, conn: Connection, run_id: str, rows: list[Row]) -> None:
        if not rows:
            return
        cur = self._cursor(conn)
        try:
            self._write_rows(cur, run_id, rows)
        finally:
            cur.close()

    def _write_rows(self, cur: Any, run_id: str, rows: list[Row]) -> None:
        if not rows:
            return
        ids = self._touch_series(cur, run_id, _newest(rows))
        if len(ids) == 1:
            (sid,) = ids.values()
            points = [(sid, r[1], r[2], r[3], r[4]) for r in rows]
        else:
            points = [(ids[r[0]], r[1], r[2], r[3], r[4]) for r in rows]
        self._put_points(cur, points)

    def _put_points(self, cur: Any, points: Iterable[tuple[Any, ...]]) -> None:
        """Insert points, ignoring ones already stored.

        PostgreSQL gets them through COPY into a per-connection staging table and
        one INSERT ... SELECT: executemany costs a network round trip's worth of
        work per row there, COPY streams them.
        """
        if self.db.is_sqlite:
            cur.executemany(self._insert_points, points)
            return
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS lapis_staged_points "
            "(series_id BIGINT, step BIGINT, timestamp BIGINT, value DOUBLE PRECISION, "
            "is_nan BOOLEAN) ON COMMIT DELETE ROWS"
        )
        with cur.copy(
            "COPY lapis_staged_points (series_id, step, timestamp, value, is_nan) FROM STDIN"
        ) as copy:
            for row in points:
                copy.write_row(row)
        cur.execute(
            "INSERT INTO metrics (series_id, step, timestamp, value, is_nan) "
            "SELECT series_id, step, timestamp, value, is_nan FROM lapis_staged_points "
            "ON CONFLICT DO NOTHING"
        )
        cur.execute("TRUNCATE lapis_staged_points")

    def _touch_series(self, cur: Any, run_id: str, newest: dict[str, Row]) -> dict[str, int]:
        """Series ids for the batch's keys, each series' latest point moved forward.

        Missing series are created first (a concurrent writer may win that race;
        the insert is then ignored), and the latest point is only replaced by a
        newer one, so the order in which batches commit does not matter.
        """
        cur.executemany(self._insert_series, [(run_id, *r) for r in newest.values()])
        ids = self._series_ids(cur, run_id, list(newest))
        cur.executemany(
            self._advance_latest,
            [(r[1], r[2], r[3], r[4], ids[k], r[1], r[2], r[3]) for k, r in newest.items()],
        )
        return ids

    def _series_ids(self, cur: Any, run_id: str, keys: list[str]) -> dict[str, int]:
        marks = ", ".join([self._p] * len(keys))
        cur.execute(
            f"SELECT key, series_id FROM latest_metrics WHERE run_uuid = {self._p} "
            f"AND key IN ({marks})",
            (run_id, *keys),
        )
        return {k: int(sid) for k, sid in cur.fetchall()}

    # --- reads ---------------------------------------------------------------
    def _series_id(self, conn: Connection, run_id: str, key: str) -> int | None:
        p = self._p
        sid = conn.exec_driver_sql(
            f"SELECT series_id FROM latest_metrics WHERE run_uuid = {p} AND key = {p}",
            (run_id, key),
        ).scalar()
        return None if sid is None else int(sid)

    def history(
        self, run_id: str, key: str, offset: int = 0, limit: int | None = None
    ) -> list[Metric]:
        sql = (
            f"SELECT value, timestamp, step, is_nan FROM metrics WHERE series_id = {self._p} "
            "ORDER BY step, timestamp, value"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        with self.db.read() as conn:
            sid = self._series_id(conn, run_id, key)
            if sid is None:
                return []
            cur = self._cursor(conn)  # tuples straight from the driver: Row objects cost 3x
            try:
                cur.execute(sql, (sid,))
                rows = cur.fetchall()
            finally:
                cur.close()
        nan = float("nan")
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
        rank instead, as MLflow does, which reads the series once.
        """
        p = self._p
        with self.db.read() as conn:
            sid = self._series_id(conn, run_id, key)
            if sid is None:
                return []
            where = f"series_id = {p}"
            args: tuple[Any, ...] = (sid,)
            if start_step is not None and end_step is not None:
                where += f" AND step >= {p} AND step <= {p}"
                args += (start_step, end_step)
            sel = f"SELECT value, timestamp, step, is_nan FROM metrics WHERE {where}"
            last = conn.exec_driver_sql(
                f"{sel} ORDER BY step DESC, timestamp DESC, value DESC LIMIT 1", args
            ).first()
            if last is None:
                return []
            if max_results <= 1:
                rows = [tuple(last)]
            else:
                first = conn.exec_driver_sql(
                    f"{sel} ORDER BY step, timestamp, value LIMIT 1", args
                ).first()
                assert first is not None
                if last[2] - first[2] + 1 >= max_results:
                    rows = self._seek_sample(conn, sel, args, first[2], last[2], max_results)
                    if rows[-1] != tuple(last):
                        rows.append(tuple(last))
                else:
                    rows = self._rank_sample(conn, where, args, max_results)
        nan = float("nan")
        return [Metric(key, nan if n else v, t, s, run_id) for v, t, s, n in rows]

    def _seek_sample(
        self, conn: Connection, sel: str, args: tuple[Any, ...], lo: int, hi: int, n: int
    ) -> list[tuple[Any, ...]]:
        sql = f"{sel} AND step >= {self._p} ORDER BY step, timestamp, value LIMIT 1"
        out: list[tuple[Any, ...]] = []
        last_step: int | None = None
        cur = self._cursor(conn)
        try:
            for i in range(n - 1):
                target = lo + ((hi - lo) * i) // (n - 1)
                if last_step is not None and target <= last_step:
                    target = last_step + 1
                cur.execute(sql, (*args, target))
                row = cur.fetchone()
                if row is None or row[2] > hi:
                    break
                last_step = row[2]
                out.append(tuple(row))
        finally:
            cur.close()
        return out

    def _rank_sample(
        self, conn: Connection, where: str, args: tuple[Any, ...], n: int
    ) -> list[tuple[Any, ...]]:
        cols = "value, timestamp, step, is_nan"
        total = conn.exec_driver_sql(
            f"SELECT COUNT(*) FROM metrics WHERE {where}", args
        ).scalar_one()
        if total <= n:
            sql = f"SELECT {cols} FROM metrics WHERE {where} ORDER BY step, timestamp, value"
        else:
            picks = sorted({round(i * (total - 1) / (n - 1)) for i in range(n)})
            sql = (
                f"SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER "
                f"(ORDER BY step, timestamp, value) - 1 AS rn FROM metrics WHERE {where}) "
                f"AS ranked WHERE rn IN ({', '.join(map(str, picks))}) ORDER BY rn"
            )
        return [tuple(r) for r in conn.exec_driver_sql(sql, args)]
