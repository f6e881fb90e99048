"""The background metric writer against an in-process fake transport.

No server here: httpx.MockTransport records what would have been sent, so
these tests pin the batching, chunking, retry and error-reporting rules.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from lapis.errors import InvalidParameterValue, LapisError, ResourceDoesNotExist
from lapis.sdk.connection import LapisHTTP, ServerNotFound
from lapis.sdk.writer import MetricWriter

RUN = "a" * 32


class Recorder:
    """A MockTransport handler that answers /log like the server and keeps the bodies."""

    def __init__(self, fail: Callable[[int], httpx.Response | Exception | None] | None = None):
        self.bodies: list[dict[str, Any]] = []
        self.calls = 0
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.calls += 1
            n = self.calls
        if self.fail is not None:
            outcome = self.fail(n)
            if isinstance(outcome, Exception):
                raise outcome
            if outcome is not None:
                return outcome
        assert request.url.path == f"/api/v1/runs/{RUN}/log"
        assert request.headers["authorization"] == "Bearer tok"
        body = json.loads(request.content)
        with self.lock:
            self.bodies.append(body)
        return httpx.Response(200, json={"metrics": len(body.get("metrics", {}).get("key", []))})

    @property
    def points(self) -> list[tuple[Any, ...]]:
        out = []
        for b in self.bodies:
            m = b.get("metrics", {})
            out += list(zip(m.get("key", []), m["value"], m["step"], m["timestamp"], strict=True))
        return out


def make_writer(rec: Recorder, **kw: Any) -> MetricWriter:
    http = LapisHTTP("http://lapis.test", "tok", transport=httpx.MockTransport(rec))
    kw.setdefault("start", False)
    kw.setdefault("retry_timeout", 2.0)
    return MetricWriter(http, RUN, **kw)


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_logging_does_not_touch_the_network_until_flush() -> None:
    rec = Recorder()
    w = make_writer(rec)
    before = int(time.time() * 1000)
    for i in range(10):
        w.log_metric("loss", 1.0 / (i + 1), step=i)
    w.log_metric("acc", 0.5)  # step defaults to 0, timestamp to now
    assert rec.calls == 0 and w.pending == 11
    w.flush()
    assert rec.calls == 1 and w.pending == 0
    pts = rec.points
    assert [p[2] for p in pts[:10]] == list(range(10))
    assert pts[10][:3] == ("acc", 0.5, 0)
    assert before <= pts[10][3] <= int(time.time() * 1000)
    w.flush()  # nothing new: no request
    assert rec.calls == 1


def test_batches_are_columnar_and_chunked_with_params_in_the_first() -> None:
    rec = Recorder()
    w = make_writer(rec, chunk_size=1000)
    w.log_params({"lr": 0.1, "layers": 3})
    w.set_tags({"team": "vision"})
    for i in range(2500):
        w.log_metric("x", float(i), step=i, timestamp=1000 + i)
    w.flush()
    assert [len(b["metrics"]["key"]) for b in rec.bodies] == [1000, 1000, 500]
    assert rec.bodies[0]["params"] == {"lr": "0.1", "layers": "3"}
    assert rec.bodies[0]["tags"] == {"team": "vision"}
    assert all("params" not in b and "tags" not in b for b in rec.bodies[1:])
    assert [p[2] for p in rec.points] == list(range(2500))
    assert w.sent_points == 2500


def test_params_and_tags_alone_are_sent() -> None:
    rec = Recorder()
    w = make_writer(rec)
    w.log_params({"a": 1})
    w.flush()
    assert rec.bodies == [{"params": {"a": "1"}}]


def test_non_finite_values_use_mlflow_spellings() -> None:
    rec = Recorder()
    w = make_writer(rec)
    for v in (math.nan, math.inf, -math.inf, 2):
        w.log_metric("m", v)
    w.flush()
    assert [p[1] for p in rec.points] == ["NaN", "Infinity", "-Infinity", 2.0]


def test_bad_arguments_fail_at_the_call() -> None:
    w = make_writer(Recorder())
    with pytest.raises(InvalidParameterValue):
        w.log_metric(3, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        w.log_metric("k", "not a number")  # type: ignore[arg-type]
    w.log_params({"lr": 0.1})
    w.log_params({"lr": "0.1"})  # same value again is fine
    with pytest.raises(InvalidParameterValue, match="Changing param values"):
        w.log_params({"lr": 0.2})


def test_background_thread_flushes_on_size_and_on_interval() -> None:
    rec = Recorder()
    w = make_writer(rec, start=True, interval=30.0, flush_at=100)
    for i in range(150):
        w.log_metric("x", i, step=i)
    wait_for(lambda: len(rec.points) >= 100)
    w.close()
    assert len(rec.points) == 150

    rec2 = Recorder()
    w2 = make_writer(rec2, start=True, interval=0.05)
    w2.log_metric("y", 1.0)
    wait_for(lambda: len(rec2.points) == 1)
    w2.close()


def test_many_threads_logging_keep_points_whole() -> None:
    rec = Recorder()
    w = make_writer(rec, start=True, interval=0.01, flush_at=500, chunk_size=700)

    def work(t: int) -> None:
        for i in range(5000):
            w.log_metric(f"k{t}", float(i), step=i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    w.close()
    pts = rec.points
    assert len(pts) == 20000
    assert all(p[1] == float(p[2]) for p in pts)
    for t in range(4):
        assert sorted(p[2] for p in pts if p[0] == f"k{t}") == list(range(5000))


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.Response(503, json={"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}),
        httpx.Response(502, text="bad gateway"),
    ],
    ids=["connect", "timeout", "503", "502"],
)
def test_transient_failures_are_retried(failure: httpx.Response | Exception) -> None:
    rec = Recorder(fail=lambda n: failure if n <= 2 else None)
    w = make_writer(rec)
    w.log_metric("x", 1.0)
    w.flush()
    assert rec.calls == 3
    assert len(rec.points) == 1


def test_retries_give_up_after_the_timeout_and_report() -> None:
    rec = Recorder(fail=lambda n: httpx.ConnectError("refused"))
    w = make_writer(rec, retry_timeout=0.3)
    w.log_metric("x", 1.0)
    with pytest.raises(ServerNotFound, match="lapis server"):
        w.flush()
    assert rec.calls >= 2


def test_a_4xx_is_raised_from_the_next_call_then_cleared() -> None:
    body = {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Run '{RUN}' not found"}
    rec = Recorder(fail=lambda n: httpx.Response(404, json=body) if n == 1 else None)
    w = make_writer(rec, start=True, interval=0.02)
    w.log_metric("x", 1.0)
    wait_for(lambda: rec.calls >= 1)
    wait_for(lambda: w._error is not None)
    with pytest.raises(ResourceDoesNotExist, match="not found"):
        w.log_metric("x", 2.0)
    assert rec.calls == 1  # a 4xx is not retried
    w.log_metric("x", 3.0)  # the error was reported once; logging goes on
    w.close()
    assert [p[1] for p in rec.points] == [3.0]


def test_a_4xx_on_flush_raises_there() -> None:
    rec = Recorder(fail=lambda n: httpx.Response(400, json={"message": "bad", "error_code": "X"}))
    w = make_writer(rec)
    w.log_metric("x", 1.0)
    with pytest.raises(LapisError, match="bad"):
        w.flush()
    w.flush()  # reported once
