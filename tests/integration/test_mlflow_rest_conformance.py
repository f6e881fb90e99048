"""Scenarios from MLflow's own REST tests, written here: Lapis answers them as MLflow's
server does (same status, same error code, same order)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

MLFLOW = "/api/2.0/mlflow"


def _runs(c: httpx.Client, n: int) -> list[str]:
    exp = c.post(f"{MLFLOW}/experiments/create", json={"name": f"rc-{uuid.uuid4().hex[:8]}"})
    eid = exp.json()["experiment_id"]
    return [
        c.post(f"{MLFLOW}/runs/create", json={"experiment_id": eid}).json()["run"]["info"]["run_id"]
        for _ in range(n)
    ]


@pytest.mark.parametrize("route", ["runs/set-tag", "runs/log-parameter"])
@pytest.mark.parametrize("value", [1, 2.5, True, ["a"], {"a": 1}])
def test_a_value_that_is_not_a_string_is_refused(
    inprocess_server: Any, route: str, value: Any
) -> None:
    with inprocess_server.client() as c:
        (run_id,) = _runs(c, 1)
        r = c.post(f"{MLFLOW}/{route}", json={"run_id": run_id, "key": "k", "value": value})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "value" in r.json()["message"]


def test_history_bulk_needs_runs_and_orders_by_run(inprocess_server: Any) -> None:
    with inprocess_server.client() as c:
        runs = _runs(c, 3)
        for i, run_id in enumerate(runs):
            for step, ts in ((1, 20), (0, 10)):
                body = {"run_id": run_id, "key": "m", "value": i, "timestamp": ts, "step": step}
                assert c.post(f"{MLFLOW}/runs/log-metric", json=body).status_code == 200
        r = c.get(f"{MLFLOW}/metrics/get-history-bulk", params={"metric_key": "m"})
        assert r.status_code == 400 and "at least one run_id" in r.json()["message"]
        r = c.get(
            f"{MLFLOW}/metrics/get-history-bulk",
            params=[("metric_key", "m"), *(("run_id", run) for run in reversed(runs))],
        )
    assert r.status_code == 200
    got = [(m["run_id"], m["step"]) for m in r.json()["metrics"]]
    assert got == [(run, step) for run in sorted(runs) for step in (0, 1)]
