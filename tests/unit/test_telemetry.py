"""Scoring telemetry: histogram quantiles, the per-second ring, and Prometheus text."""

from __future__ import annotations

import re

import pytest

from lapis.endpoints.data.routing import DeploymentRoute, EndpointRoute, Instance, RouteTable
from lapis.endpoints.data.telemetry import BUCKETS, NBUCKETS, RING_SECONDS, Telemetry, quantile


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_quantiles_land_in_the_right_bucket() -> None:
    t = Telemetry(Clock())
    for i in range(1, 101):  # 1 ms .. 100 ms
        t.record("e", "blue", 200, i / 1000)
    latency = t.endpoint("e").summary()["latency_ms"]
    for q, expected in (("p50", 50), ("p95", 95), ("p99", 99)):
        assert expected / 1.42 <= latency[q] <= expected * 1.42, (q, latency)  # within a bucket
    assert latency["mean"] == pytest.approx(50.5)
    assert quantile([0] * NBUCKETS, 0.5) is None
    huge = [0] * NBUCKETS
    huge[-1] = 3  # past the last bound: reported as the last bound, not infinity
    assert quantile(huge, 0.99) == BUCKETS[-1]


def test_errors_codes_and_mirrored_requests() -> None:
    t = Telemetry(Clock())
    for code in (200, 200, 400, 401, 408, 429, 500, 503):
        t.record("Shop", "blue", code, 0.002)
    t.record("shop", "green", 200, 0.003, mirrored=True)
    total = t.endpoint("SHOP").summary()
    assert total["requests"] == 8 and total["errors"] == 4  # 408, 429, 5xx
    assert total["by_class"] == {"2xx": 2, "4xx": 4, "5xx": 2}
    green = t.series("shop", "green").summary()
    assert green["requests"] == 1 and green["mirrored"] == 1
    report = t.report("shop", window=60)
    assert set(report["deployments"]) == {"blue", "green"}
    assert report["totals"]["requests"] == 8  # a mirrored copy is not a caller's request
    t.forget("shop")
    assert t.report("shop")["deployments"] == {}


def test_ring_keeps_the_last_hour_per_second() -> None:
    clock = Clock()
    t = Telemetry(clock)
    start = int(clock.now)
    for second in range(5):
        clock.now = start + second + 0.5
        for _ in range(second + 1):
            t.record("e", "blue", 500 if second == 4 else 200, 0.001 * (second + 1))
    series = t.series("e", "blue").window(clock.now, 5, 1)
    assert series["t"] == [start + i for i in range(5)]
    assert series["requests"] == [1, 2, 3, 4, 5] and series["errors"] == [0, 0, 0, 0, 5]
    assert series["p50_ms"][0] is not None and series["p50_ms"][4] > series["p50_ms"][0]
    coarse = t.series("e", "blue").window(clock.now, 4, 2)
    assert coarse["requests"] == [2 + 3, 4 + 5] and coarse["rps"] == [2.5, 4.5]
    # an hour later the slots are reused: old seconds no longer count
    clock.now = start + RING_SECONDS + 0.5
    t.record("e", "blue", 200, 0.001)
    recent = t.report("e", window=RING_SECONDS)["deployments"]["blue"]["recent"]
    assert recent["requests"] == 2 + 3 + 4 + 5 + 1  # second 0 fell out of the hour
    assert t.series("e", "blue").window(clock.now, 1, 1)["requests"] == [1]  # its slot, reused
    assert t.series("e", "blue").count == 16  # totals are kept forever


def test_prometheus_text() -> None:
    t = Telemetry(Clock())
    routes = RouteTable()
    ready = Instance("Blue", 0, 1, "127.0.0.1", 1, ready=True, in_flight=2)
    starting = Instance("Blue", 1, 1, "127.0.0.1", 2)
    routes.publish(
        EndpointRoute(
            "Shop",
            ("k",),
            {"Blue": 100},
            {},
            {"blue": DeploymentRoute("Blue", [ready, starting])},
        )
    )
    t.record("shop", "Blue", 200, 0.004)
    t.record("shop", "Blue", 200, 0.004)
    t.record("shop", "", 401, 0.0001)
    from lapis.endpoints.data.telemetry import prometheus

    text = prometheus(t, routes)
    assert 'lapis_endpoint_requests_total{endpoint="Shop",deployment="Blue",code="200"} 2' in text
    assert 'lapis_endpoint_requests_total{endpoint="Shop",deployment="",code="401"} 1' in text
    buckets = re.findall(r'deployment="Blue",le="([^"]+)"\} (\d+)', text)
    assert len(buckets) == NBUCKETS and buckets[-1] == ("+Inf", "2")
    counts = [int(n) for _, n in buckets]
    assert counts == sorted(counts) and counts[0] == 0  # cumulative
    assert 'lapis_endpoint_request_duration_seconds_count{endpoint="Shop",deployment="Blue"} 2' in (
        text
    )
    assert 'lapis_deployment_instances{endpoint="Shop",deployment="Blue",state="ready"} 1' in text
    assert 'lapis_deployment_instances{endpoint="Shop",deployment="Blue",state="starting"} 1' in (
        text
    )
    assert 'lapis_endpoint_inflight{endpoint="Shop",deployment="Blue"} 2' in text
    assert "# TYPE lapis_endpoint_request_duration_seconds histogram" in text
