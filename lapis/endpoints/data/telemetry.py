"""Scoring telemetry: request counts, errors and latency histograms, in memory.

The scoring proxy records one observation per answered request, on the event
loop, so recording must cost about a microsecond: a ``bisect`` into fixed
log-spaced latency buckets and a handful of integer increments, no locks, no
allocation except once per second of traffic (a fresh per-second slot).

What is kept, per :class:`Series`:

- totals since the server started: requests by status code, errors, a latency
  histogram with its sum (which is exactly what a Prometheus histogram is);
- a ring of the last hour, one slot per second, each with its own request and
  error counts and histogram, so the studio can draw requests/s, p50/p99 and
  errors over time, and a window's quantiles are computed by adding slots.

Quantiles come from the histogram by linear interpolation inside the bucket
that holds the rank: with buckets growing by √2 the estimate is within the
bucket's width (about ±20 %), which is what Prometheus' ``histogram_quantile``
gives too.

Series exist per (endpoint, deployment) for requests routed to a deployment —
mirrored copies included, and counted apart as ``mirrored`` — plus per
(endpoint, ``""``) for callers' requests answered before a deployment was
chosen (bad key, no traffic). Each endpoint also has an aggregate of all its
callers' requests (mirrored copies excluded), which is what its totals show.

An *error* is a request the endpoint failed to serve: a 5xx, a 408 (request
timeout) or a 429 (over capacity). Other 4xx answers (a bad key, a malformed
payload) are the caller's mistakes and count only under their status code.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any

#: Upper bounds (seconds) of the latency buckets: 0.25 ms * sqrt(2)**i up to ~46 s, then +Inf.
BUCKETS: tuple[float, ...] = tuple(0.00025 * math.sqrt(2) ** i for i in range(36))
NBUCKETS = len(BUCKETS) + 1  # the last one is +Inf
RING_SECONDS = 3600


def is_error(code: int) -> bool:
    return code >= 500 or code == 408 or code == 429


def quantile(hist: list[int], q: float) -> float | None:
    """The ``q`` quantile (seconds) of a bucket histogram, or None when it is empty."""
    total = sum(hist)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(hist):
        if n and seen + n >= rank:
            upper = BUCKETS[i] if i < len(BUCKETS) else BUCKETS[-1]
            lower = BUCKETS[i - 1] if 0 < i <= len(BUCKETS) else (0.0 if i == 0 else upper)
            return lower + (upper - lower) * max(0.0, rank - seen) / n
        seen += n
    return BUCKETS[-1]


class Series:
    """Counts and latencies of one (endpoint, deployment): totals and the last hour."""

    __slots__ = (
        "by_code",
        "count",
        "errors",
        "hist",
        "mirrored",
        "ring_count",
        "ring_errors",
        "ring_hist",
        "ring_second",
        "sum",
    )

    def __init__(self) -> None:
        self.by_code: dict[int, int] = {}
        self.count = 0
        self.errors = 0
        self.mirrored = 0
        self.hist = [0] * NBUCKETS
        self.sum = 0.0
        self.ring_second = [-1] * RING_SECONDS
        self.ring_count = [0] * RING_SECONDS
        self.ring_errors = [0] * RING_SECONDS
        self.ring_hist: list[list[int] | None] = [None] * RING_SECONDS

    def record(self, code: int, seconds: float, now: float, mirrored: bool = False) -> None:
        b = bisect_left(BUCKETS, seconds)
        self.count += 1
        self.by_code[code] = self.by_code.get(code, 0) + 1
        self.hist[b] += 1
        self.sum += seconds
        err = code >= 500 or code == 408 or code == 429
        if err:
            self.errors += 1
        if mirrored:
            self.mirrored += 1
        second = int(now)
        slot = second % RING_SECONDS
        hist = self.ring_hist[slot]
        if self.ring_second[slot] != second or hist is None:
            self.ring_second[slot] = second
            self.ring_count[slot] = 0
            self.ring_errors[slot] = 0
            hist = self.ring_hist[slot] = [0] * NBUCKETS
        self.ring_count[slot] += 1
        hist[b] += 1
        if err:
            self.ring_errors[slot] += 1

    # --- reading -------------------------------------------------------------------
    def by_class(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for code, n in self.by_code.items():
            key = f"{code // 100}xx"
            out[key] = out.get(key, 0) + n
        return out

    def summary(self) -> dict[str, Any]:
        """Totals since start: counts, errors and latency quantiles in milliseconds."""
        return {
            "requests": self.count,
            "errors": self.errors,
            "mirrored": self.mirrored,
            "by_class": self.by_class(),
            "by_code": {str(k): v for k, v in sorted(self.by_code.items())},
            "latency_ms": _latency(self.hist, self.sum, self.count),
        }

    def window(self, now: float, seconds: int, step: int) -> dict[str, Any]:
        """The last ``seconds`` seconds in points of ``step`` seconds, oldest first.

        Columns rather than rows (``t``, ``requests``, ``errors``, ``rps``,
        ``p50_ms``, ``p99_ms``), ready for a chart; quantiles are None where a
        point had no requests. ``t`` is the epoch second a point starts at.
        """
        seconds = max(1, min(seconds, RING_SECONDS))
        step = max(1, min(step, seconds))
        end = int(now) + 1
        start = end - seconds
        t: list[int] = []
        requests: list[int] = []
        errors: list[int] = []
        rps: list[float] = []
        p50: list[float | None] = []
        p99: list[float | None] = []
        for point in range(start, end, step):
            hist = [0] * NBUCKETS
            count = errs = 0
            for second in range(point, min(point + step, end)):
                slot = second % RING_SECONDS
                slot_hist = self.ring_hist[slot]
                if self.ring_second[slot] != second or slot_hist is None:
                    continue
                count += self.ring_count[slot]
                errs += self.ring_errors[slot]
                hist = [a + b for a, b in zip(hist, slot_hist, strict=True)]
            t.append(point)
            requests.append(count)
            errors.append(errs)
            rps.append(round(count / step, 3))
            p50.append(_ms(quantile(hist, 0.5)))
            p99.append(_ms(quantile(hist, 0.99)))
        return {
            "step_seconds": step,
            "t": t,
            "requests": requests,
            "errors": errors,
            "rps": rps,
            "p50_ms": p50,
            "p99_ms": p99,
        }

    def window_hist(self, now: float, seconds: int) -> tuple[int, int, list[int]]:
        """Requests, errors and the merged histogram of the last ``seconds`` seconds."""
        end = int(now) + 1
        hist = [0] * NBUCKETS
        count = errs = 0
        for second in range(end - max(1, min(seconds, RING_SECONDS)), end):
            slot = second % RING_SECONDS
            slot_hist = self.ring_hist[slot]
            if self.ring_second[slot] == second and slot_hist is not None:
                count += self.ring_count[slot]
                errs += self.ring_errors[slot]
                hist = [a + b for a, b in zip(hist, slot_hist, strict=True)]
        return count, errs, hist


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _latency(hist: list[int], total: float, count: int) -> dict[str, float | None]:
    return {
        "mean": _ms(total / count) if count else None,
        "p50": _ms(quantile(hist, 0.5)),
        "p95": _ms(quantile(hist, 0.95)),
        "p99": _ms(quantile(hist, 0.99)),
    }


class Telemetry:
    """All series of one server, keyed by (endpoint lower-cased, deployment as spelt).

    :meth:`series` hands out the object to record into, so the proxy can look
    one up once per request and call :meth:`Series.record` directly.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._series: dict[tuple[str, str], Series] = {}
        self._endpoints: dict[str, Series] = {}

    def series(self, endpoint: str, deployment: str) -> Series:
        key = (endpoint.lower(), deployment)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = Series()
        return found

    def endpoint(self, endpoint: str) -> Series:
        """The aggregate of every caller's request to ``endpoint`` (mirrored copies excluded)."""
        key = endpoint.lower()
        found = self._endpoints.get(key)
        if found is None:
            found = self._endpoints[key] = Series()
        return found

    def record(
        self,
        endpoint: str,
        deployment: str,
        code: int,
        seconds: float,
        mirrored: bool = False,
    ) -> None:
        """One answered request; ``deployment`` is ``""`` when none was chosen."""
        now = self.clock()
        self.series(endpoint, deployment).record(code, seconds, now, mirrored)
        if not mirrored:
            self.endpoint(endpoint).record(code, seconds, now)

    def forget(self, endpoint: str) -> None:
        """Drop an endpoint's series (it was deleted)."""
        key = endpoint.lower()
        self._endpoints.pop(key, None)
        for k in [k for k in self._series if k[0] == key]:
            del self._series[k]

    def items(self) -> Iterable[tuple[tuple[str, str], Series]]:
        return list(self._series.items())

    def deployments(self, endpoint: str) -> dict[str, Series]:
        key = endpoint.lower()
        return {d: s for (e, d), s in list(self._series.items()) if e == key and d}

    def report(self, endpoint: str, window: int = 300, step: int | None = None) -> dict[str, Any]:
        """An endpoint's totals, per-deployment totals and both as time series."""
        now = self.clock()
        window = max(1, min(int(window), RING_SECONDS))
        step = max(1, int(step)) if step else max(1, window // 300)
        total = self.endpoint(endpoint)
        body: dict[str, Any] = {
            "endpoint": endpoint,
            "window_seconds": window,
            "totals": total.summary() | {"recent": _recent(total, now, window)},
            "timeseries": total.window(now, window, step),
            "deployments": {},
        }
        for name, series in sorted(self.deployments(endpoint).items()):
            body["deployments"][name] = series.summary() | {
                "recent": _recent(series, now, window),
                "timeseries": series.window(now, window, step),
            }
        return body


def _recent(series: Series, now: float, window: int) -> dict[str, Any]:
    count, errors, hist = series.window_hist(now, window)
    return {
        "requests": count,
        "errors": errors,
        "rps": round(count / window, 3),
        "latency_ms": {
            "p50": _ms(quantile(hist, 0.5)),
            "p95": _ms(quantile(hist, 0.95)),
            "p99": _ms(quantile(hist, 0.99)),
        },
    }


# --- Prometheus text exposition ------------------------------------------------------------
def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _bound(seconds: float) -> str:
    return f"{seconds:.6g}"


def instance_states(instances: Iterable[Any]) -> dict[str, int]:
    """Instances of a deployment by state: ready, starting (or restarting), draining."""
    states = {"ready": 0, "starting": 0, "draining": 0}
    for inst in instances:
        if inst.draining:
            states["draining"] += 1
        elif inst.ready:
            states["ready"] += 1
        else:
            states["starting"] += 1
    return states


def prometheus(telemetry: Telemetry, routes: Any) -> str:
    """All series in Prometheus' text format (version 0.0.4).

    ``deployment=""`` holds callers' requests answered before a deployment was
    chosen (bad key, no traffic); mirrored copies are counted under their
    shadow deployment like any request.
    """
    out: list[str] = [
        "# HELP lapis_endpoint_requests_total Scoring requests answered, by status code.",
        "# TYPE lapis_endpoint_requests_total counter",
    ]
    series = sorted(telemetry.items())
    names: dict[str, str] = {}
    for endpoint_key in {k[0] for k, _ in series} | {n.lower() for n in routes.names()}:
        route = routes.get(endpoint_key)
        names[endpoint_key] = route.name if route is not None else endpoint_key
    for (endpoint, deployment), s in series:
        labels = f'endpoint="{_label(names[endpoint])}",deployment="{_label(deployment)}"'
        for code, n in sorted(s.by_code.items()):
            out.append(f'lapis_endpoint_requests_total{{{labels},code="{code}"}} {n}')
    out += [
        "# HELP lapis_endpoint_request_duration_seconds Scoring latency through the server.",
        "# TYPE lapis_endpoint_request_duration_seconds histogram",
    ]
    for (endpoint, deployment), s in series:
        labels = f'endpoint="{_label(names[endpoint])}",deployment="{_label(deployment)}"'
        cumulative = 0
        for i, n in enumerate(s.hist):
            cumulative += n
            le = _bound(BUCKETS[i]) if i < len(BUCKETS) else "+Inf"
            out.append(
                f'lapis_endpoint_request_duration_seconds_bucket{{{labels},le="{le}"}} {cumulative}'
            )
        out.append(f"lapis_endpoint_request_duration_seconds_sum{{{labels}}} {s.sum:.6f}")
        out.append(f"lapis_endpoint_request_duration_seconds_count{{{labels}}} {s.count}")
    instances = [
        "# HELP lapis_deployment_instances Deployment instances by state.",
        "# TYPE lapis_deployment_instances gauge",
    ]
    inflight = [
        "# HELP lapis_endpoint_inflight Scoring requests in flight to a deployment's instances.",
        "# TYPE lapis_endpoint_inflight gauge",
    ]
    for endpoint_key in sorted(routes.names()):
        route = routes.get(endpoint_key)
        if route is None:
            continue
        for dep in sorted(route.deployments.values(), key=lambda d: d.name):
            labels = f'endpoint="{_label(route.name)}",deployment="{_label(dep.name)}"'
            for state, n in instance_states(dep.instances).items():
                instances.append(f'lapis_deployment_instances{{{labels},state="{state}"}} {n}')
            busy = sum(i.in_flight for i in dep.instances)
            inflight.append(f"lapis_endpoint_inflight{{{labels}}} {busy}")
    return "\n".join(out + instances + inflight) + "\n"
