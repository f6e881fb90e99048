"""Metric series for the studio's charts, downsampled on the server.

A chart is about a thousand pixels wide; sending it a million points costs
seconds of transfer and drawing for nothing. So the server cuts a series into
at most ``points // 2`` buckets and keeps, per bucket, its lowest and highest
value (min/max decimation): spikes and dips survive, which striding or
averaging would drop. Each kept value is placed at the x of the bucket's
first or last point, in the order that continues the line from the previous
bucket, so a falling loss curve is drawn as one falling line, not a zigzag.
A bucket of one point is that point; a series with fewer steps than buckets
is bucketed per step, i.e. drawn exactly.

Buckets are ranges of *steps* even when the chart's x axis is wall-clock
time (each bucket's points are then placed at its first and last
timestamps): the metrics table's primary key starts with (series, step), so
a step range is an index range. Every bucket is one range scan plus two
index seeks (its first and last points): a ``GROUP BY`` over a bucket
expression would sort the million rows first, two to three times slower.
SQLite runs them as one query each on one cursor; PostgreSQL as one
statement (``generate_series`` of buckets, ``LATERAL`` subqueries), one
round trip.
A series logged without steps (everything on step 0) has one step; on the
time axis it is bucketed by timestamp instead, which reads it once.

NaN points are left out of the min/max (they are not values to draw); the
``total`` the route returns counts the points the buckets hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from lapis.errors import InvalidParameterValue
from lapis.store.sql.engine import Database

MAX_POINTS = 10_000
MIN_POINTS = 2


class Bucket(NamedTuple):
    """One bucket of a series: the x of its first and last point, its value range, its size."""

    x_first: int
    x_last: int
    low: float
    high: float
    n: int


def bucket_points(xs: Sequence[int], ys: Sequence[float], buckets: int) -> list[Bucket]:
    """Pure-Python bucketing of a series sorted by x: what the SQL below computes.

    Bucket ``i`` holds the points with ``(x - lo) * buckets // (hi - lo + 1) == i``.
    """
    if not xs:
        return []
    lo, hi = xs[0], xs[-1]
    span = hi - lo + 1
    out: list[Bucket] = []
    current: int | None = None
    for x, y in zip(xs, ys, strict=True):
        b = (x - lo) * buckets // span
        if b != current or not out:
            out.append(Bucket(x, x, y, y, 1))
            current = b
        else:
            first = out[-1]
            out[-1] = Bucket(first.x_first, x, min(first.low, y), max(first.high, y), first.n + 1)
    return out


def emit(buckets: Sequence[Bucket]) -> tuple[list[int], list[float]]:
    """Chart points from buckets: low and high of each, ordered to continue the line."""
    xs: list[int] = []
    ys: list[float] = []
    for b in buckets:
        if b.n == 1 or b.low == b.high:
            xs.append(b.x_first)
            ys.append(b.low if b.n == 1 else b.high)
            continue
        previous = ys[-1] if ys else None
        # Start with the extreme nearer to where the line is: no zigzag across buckets.
        if previous is not None and abs(previous - b.high) < abs(previous - b.low):
            first, second = b.high, b.low
        else:
            first, second = b.low, b.high
        xs += [b.x_first, b.x_last]
        ys += [first, second]
    return xs, ys


def downsample(
    xs: Sequence[int], ys: Sequence[float], points: int
) -> tuple[list[int], list[float]]:
    """At most ``points`` points keeping every bucket's min and max (series sorted by x)."""
    if len(xs) <= points:
        return list(xs), list(ys)
    return emit(bucket_points(xs, ys, max(1, points // 2)))


# --- reading series from the store ------------------------------------------------------
class SeriesReader:
    """Downsampled series of one run, read with driver SQL on a read connection."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.p = "?" if db.is_sqlite else "%s"

    def series_ids(self, conn: Any, run_id: str, keys: Sequence[str]) -> dict[str, int]:
        if not keys:
            return {}
        marks = ", ".join([self.p] * len(keys))
        rows = conn.exec_driver_sql(
            f"SELECT key, series_id FROM latest_metrics WHERE run_uuid = {self.p} "
            f"AND key IN ({marks})",
            (run_id, *keys),
        ).all()
        return {str(k): int(s) for k, s in rows}

    def read(
        self,
        run_id: str,
        keys: Sequence[str],
        x: str = "step",
        points: int = 1000,
        x_range: tuple[int, int] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """``{key: {"x": [...], "y": [...], "total": n}}`` for the keys the run has."""
        if x not in ("step", "time"):
            raise InvalidParameterValue(f"x must be 'step' or 'time' (got '{x}')")
        if not MIN_POINTS <= points <= MAX_POINTS:
            raise InvalidParameterValue(
                f"points must be between {MIN_POINTS} and {MAX_POINTS} (got {points})"
            )
        out: dict[str, dict[str, Any]] = {}
        with self.db.read() as conn:
            for key, sid in self.series_ids(conn, run_id, keys).items():
                buckets = self._buckets(conn, sid, x, max(1, points // 2), x_range)
                bx, by = emit(buckets)
                if x == "time":
                    pairs = sorted(zip(bx, by, strict=True))
                    bx, by = [p[0] for p in pairs], [p[1] for p in pairs]
                out[key] = {"x": bx, "y": by, "total": sum(b.n for b in buckets)}
        return {k: out[k] for k in keys if k in out}

    def _edge(self, conn: Any, sid: int, column: str, desc: bool) -> int | None:
        order = " DESC" if desc else ""
        value = conn.exec_driver_sql(
            f"SELECT {column} FROM metrics WHERE series_id = {self.p} AND is_nan = {self.p} "
            f"ORDER BY {column}{order} LIMIT 1",
            (sid, False),
        ).scalar()
        return None if value is None else int(value)

    def _buckets(
        self, conn: Any, sid: int, x: str, n: int, x_range: tuple[int, int] | None
    ) -> list[Bucket]:
        if x == "time" and x_range is not None:
            return self._grouped(conn, sid, "timestamp", n, *x_range)
        if x_range is not None:
            lo, hi = x_range
        else:
            first, last = self._edge(conn, sid, "step", False), self._edge(conn, sid, "step", True)
            if first is None or last is None:
                return []
            lo, hi = first, last
        if x == "time" and hi - lo + 1 < n:
            # Few steps (e.g. logged without steps): bucket by timestamp instead.
            t_lo = self._edge(conn, sid, "timestamp", False)
            t_hi = self._edge(conn, sid, "timestamp", True)
            if t_lo is None or t_hi is None:
                return []
            return self._grouped(conn, sid, "timestamp", n, t_lo, t_hi)
        if hi - lo + 1 > n:
            if self.db.is_sqlite:
                return self._ranges(conn, sid, x, n, lo, hi)
            return self._lateral(conn, sid, x, n, lo, hi)
        return self._grouped(conn, sid, "step", n, lo, hi, place_by_time=x == "time")

    def _ranges(self, conn: Any, sid: int, x: str, n: int, lo: int, hi: int) -> list[Bucket]:
        """SQLite: one indexed range query per bucket (no temporary B-tree).

        The bucket's first and last points come from two index seeks rather than
        MIN/MAX aggregates over the range: that saves a third of the scan's cost.
        On the time axis they carry the first and last points' timestamps.
        """
        p = self.p
        where = f"WHERE series_id = {p} AND step >= {p} AND step < {p} AND is_nan = {p}"
        agg = f"SELECT MIN(value), MAX(value), COUNT(*) FROM metrics {where}"
        first = f"SELECT step, timestamp FROM metrics {where} ORDER BY step, timestamp LIMIT 1"
        last = (
            f"SELECT step, timestamp FROM metrics {where} "
            "ORDER BY step DESC, timestamp DESC LIMIT 1"
        )
        col = 1 if x == "time" else 0
        span = hi - lo + 1
        out: list[Bucket] = []
        cur = conn.connection.driver_connection.cursor()
        try:
            for i in range(n):
                start = lo + -(-span * i // n)  # first step of bucket i: ceil(span * i / n)
                end = lo + -(-span * (i + 1) // n)
                if end <= start:
                    continue
                args = (sid, start, end, False)
                low, high, count = cur.execute(agg, args).fetchone()
                if not count:
                    continue
                head = cur.execute(first, args).fetchone()
                tail = cur.execute(last, args).fetchone() if count > 1 else head
                out.append(Bucket(int(head[col]), int(tail[col]), low, high, int(count)))
        finally:
            cur.close()
        return out

    def _lateral(self, conn: Any, sid: int, x: str, n: int, lo: int, hi: int) -> list[Bucket]:
        """PostgreSQL: the same per-bucket range scans and seeks, as one LATERAL statement.

        One round trip, and no sort: a ``GROUP BY`` over the bucket expression
        sorts the million rows first (spilling to disk), about twice as slow.
        """
        col = "timestamp" if x == "time" else "step"
        where = "m.series_id = %(sid)s AND m.step >= r.s AND m.step < r.e AND m.is_nan = false"
        sql = (
            f"SELECT a.low, a.high, a.n, f.{col}, l.{col} "
            "FROM generate_series(0, %(n)s - 1) AS g(i) "
            "CROSS JOIN LATERAL (SELECT "
            "CAST(%(lo)s AS BIGINT) + (CAST(%(span)s AS BIGINT) * g.i + %(n)s - 1) / %(n)s AS s, "
            "CAST(%(lo)s AS BIGINT) + (CAST(%(span)s AS BIGINT) * (g.i + 1) + %(n)s - 1) / %(n)s "
            "AS e) AS r "
            "CROSS JOIN LATERAL (SELECT MIN(m.value) AS low, MAX(m.value) AS high, "
            f"COUNT(*) AS n FROM metrics m WHERE {where}) AS a "
            "LEFT JOIN LATERAL (SELECT m.step, m.timestamp FROM metrics m "
            f"WHERE {where} ORDER BY m.step, m.timestamp LIMIT 1) AS f ON true "
            "LEFT JOIN LATERAL (SELECT m.step, m.timestamp FROM metrics m "
            f"WHERE {where} ORDER BY m.step DESC, m.timestamp DESC LIMIT 1) AS l ON true "
            "WHERE a.n > 0 ORDER BY g.i"
        )
        rows = conn.exec_driver_sql(sql, {"sid": sid, "n": n, "lo": lo, "span": hi - lo + 1})
        return [Bucket(int(r[3]), int(r[4]), float(r[0]), float(r[1]), int(r[2])) for r in rows]

    def _grouped(
        self,
        conn: Any,
        sid: int,
        column: str,
        n: int,
        lo: int,
        hi: int,
        place_by_time: bool = False,
    ) -> list[Bucket]:
        """One GROUP BY over ``(column - lo) * n // span``: PostgreSQL, short series, time axis."""
        p = self.p
        xcol = "timestamp" if place_by_time else column
        span = max(1, hi - lo + 1)
        rows = conn.exec_driver_sql(
            f"SELECT ({column} - {p}) * {p} / {p} AS b, MIN({xcol}), MAX({xcol}), MIN(value), "
            f"MAX(value), COUNT(*) FROM metrics WHERE series_id = {p} AND {column} >= {p} "
            f"AND {column} <= {p} AND is_nan = {p} GROUP BY b ORDER BY b",
            (lo, n, span, sid, lo, hi, False),
        ).all()
        return [Bucket(int(r[1]), int(r[2]), float(r[3]), float(r[4]), int(r[5])) for r in rows]


__all__ = ["Bucket", "SeriesReader", "bucket_points", "downsample", "emit"]
