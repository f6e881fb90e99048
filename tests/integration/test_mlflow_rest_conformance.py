"""Scenarios from MLflow's own REST tests, written here: Lapis answers them as MLflow's
server does (same status, same error code, same order)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.stores("sqlite", "postgres")

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


def test_a_relative_artifact_location_is_made_absolute(inprocess_server: Any) -> None:
    with inprocess_server.client() as c:
        name = f"rel-{uuid.uuid4().hex[:8]}"
        made = c.post(
            f"{MLFLOW}/experiments/create", json={"name": name, "artifact_location": "rel/store"}
        ).json()
        got = c.get(f"{MLFLOW}/experiments/get", params={"experiment_id": made["experiment_id"]})
        location = got.json()["experiment"]["artifact_location"]
    assert location.startswith("/") and location.endswith("/rel/store")


def test_a_new_model_version_without_description_reads_empty(inprocess_server: Any) -> None:
    name = f"rm-{uuid.uuid4().hex[:8]}"
    with inprocess_server.client() as c:
        c.post(f"{MLFLOW}/registered-models/create", json={"name": name})
        mv = c.post(
            f"{MLFLOW}/model-versions/create", json={"name": name, "source": "file:///tmp/m"}
        ).json()["model_version"]
        got = c.get(f"{MLFLOW}/model-versions/get", params={"name": name, "version": "1"})
    assert mv["description"] == "" and got.json()["model_version"]["description"] == ""


def test_logged_model_metrics_keep_their_dataset_and_search_filters_by_it(
    inprocess_server: Any,
) -> None:
    with inprocess_server.client() as c:
        exp = c.post(f"{MLFLOW}/experiments/create", json={"name": f"lm-{uuid.uuid4().hex[:8]}"})
        eid = exp.json()["experiment_id"]
        run_id = c.post(f"{MLFLOW}/runs/create", json={"experiment_id": eid}).json()["run"]["info"][
            "run_id"
        ]
        ids = []
        for name in ("on-train", "on-none"):
            made = c.post(f"{MLFLOW}/logged-models", json={"experiment_id": eid, "name": name})
            ids.append(made.json()["model"]["info"]["model_id"])
        metric = {"run_id": run_id, "key": "acc", "timestamp": 1, "step": 0}
        c.post(f"{MLFLOW}/runs/log-metric", json={**metric, "value": 0.9, "model_id": ids[0],
               "dataset_name": "train", "dataset_digest": "abc"})  # fmt: skip
        c.post(f"{MLFLOW}/runs/log-metric", json={**metric, "value": 0.5, "model_id": ids[1]})
        got = c.get(f"{MLFLOW}/logged-models/{ids[0]}").json()["model"]["data"]["metrics"]
        assert got[0]["dataset_name"] == "train" and got[0]["dataset_digest"] == "abc"
        assert got[0]["model_id"] == ids[0]

        def names(**body: Any) -> list[str]:
            r = c.post(f"{MLFLOW}/logged-models/search", json={"experiment_ids": [eid], **body})
            assert r.status_code == 200, r.text
            return sorted(m["info"]["name"] for m in r.json()["models"])

        assert names() == ["on-none", "on-train"]
        assert names(datasets=[{"dataset_name": "train"}]) == ["on-train"]
        assert names(datasets=[{"dataset_name": "train", "dataset_digest": "zzz"}]) == []
        assert names(filter="metrics.acc > 0.4") == ["on-none", "on-train"]
        assert names(filter="metrics.acc > 0.4", datasets=[{"dataset_name": "train"}]) == [
            "on-train"
        ]
        r = c.post(
            f"{MLFLOW}/logged-models/search",
            json={"experiment_ids": [eid], "datasets": [{"dataset_digest": "abc"}]},
        )
    assert r.status_code == 400 and "`dataset_name`" in r.json()["message"]


def test_a_logged_model_may_name_a_run_this_server_does_not_know(inprocess_server: Any) -> None:
    elsewhere = "0123456789abcdef0123456789abcdef"
    with inprocess_server.client() as c:
        made = c.post(
            f"{MLFLOW}/logged-models",
            json={"experiment_id": "0", "name": "from-elsewhere", "source_run_id": elsewhere},
        )
    assert made.status_code == 200, made.text
    assert made.json()["model"]["info"]["source_run_id"] == elsewhere
