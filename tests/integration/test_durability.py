"""Nothing acknowledged is lost: kill -9 the server while writes stream in, restart, compare."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest


def _writer(url: str, token: str, run_id: str, acked: list[int], stop: threading.Event) -> None:
    """Send 1,000-point batches until the server dies; remember the acknowledged ones."""
    headers = {"Authorization": f"Bearer {token}"}
    batch = 0
    with httpx.Client(base_url=url, headers=headers, timeout=10) as c:
        while not stop.is_set():
            metrics = [
                {"key": "loss", "value": batch + i / 1000, "timestamp": 1, "step": batch * 1000 + i}
                for i in range(1000)
            ]
            try:
                r = c.post(
                    "/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, "metrics": metrics}
                )
            except httpx.HTTPError:
                return
            if r.status_code != 200:
                return
            acked.append(batch)
            batch += 1


@pytest.mark.timeout(180)
def test_kill9_loses_no_acknowledged_point(fresh_server: Any) -> None:
    with fresh_server.client() as c:
        exp = c.post("/api/2.0/mlflow/experiments/create", json={"name": "durable"}).json()
        run = c.post("/api/2.0/mlflow/runs/create", json={"experiment_id": exp["experiment_id"]})
        run_id = run.json()["run"]["info"]["run_id"]
        r = c.post(
            f"/api/v1/runs/{run_id}/log",
            json={
                "metrics": {
                    "key": ["native"] * 5000,
                    "value": [float(i) for i in range(5000)],
                    "step": list(range(5000)),
                    "timestamp": [7] * 5000,
                },
                "params": {"lr": "0.1"},
            },
        )
        assert r.status_code == 200
    acked: list[int] = []
    stop = threading.Event()
    writer = threading.Thread(
        target=_writer, args=(fresh_server.url, fresh_server.token, run_id, acked, stop)
    )
    writer.start()
    deadline = time.monotonic() + 30
    while len(acked) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    fresh_server.kill9()  # mid-stream: requests are in flight
    stop.set()
    writer.join(timeout=30)
    assert len(acked) >= 20, "the writer never got going"

    fresh_server.start()
    with fresh_server.client() as c:
        points = c.get(
            "/api/2.0/mlflow/metrics/get-history",
            params={"run_id": run_id, "metric_key": "loss", "max_results": 100000},
        ).json()["metrics"]
        steps = {p["step"] for p in points}
        for batch in acked:
            missing = {batch * 1000 + i for i in range(1000)} - steps
            assert not missing, f"batch {batch} was acknowledged but lost {len(missing)} points"
        native = c.get(f"/api/v1/runs/{run_id}/metrics/native/history").json()["points"]
        assert [p["step"] for p in native] == list(range(5000))
        assert c.get(f"/api/v1/runs/{run_id}").json()["params"] == {"lr": "0.1"}
