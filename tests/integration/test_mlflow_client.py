"""The unmodified mlflow client against a real Lapis server, on every metadata store."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

pytestmark = pytest.mark.timeout(300)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_experiments_lifecycle(mlflow_env: Any) -> None:
    c = MlflowClient()
    name = unique("exp")
    eid = c.create_experiment(name, tags={"team": "vision"})
    exp = c.get_experiment(eid)
    assert exp.name == name and exp.tags["team"] == "vision"
    assert exp.artifact_location == f"mlflow-artifacts:/{eid}"
    assert c.get_experiment_by_name(name).experiment_id == eid
    c.rename_experiment(eid, name + "-renamed")
    assert c.get_experiment(eid).name == name + "-renamed"
    c.set_experiment_tag(eid, "owner", "ana")
    assert c.get_experiment(eid).tags["owner"] == "ana"
    c.delete_experiment(eid)
    assert c.get_experiment(eid).lifecycle_stage == "deleted"
    deleted = c.search_experiments(view_type=mlflow.entities.ViewType.DELETED_ONLY)
    assert eid in [e.experiment_id for e in deleted]
    c.restore_experiment(eid)
    assert c.get_experiment(eid).lifecycle_stage == "active"
    with pytest.raises(MlflowException, match="already exists"):
        c.create_experiment(name + "-renamed")


def test_experiment_search_filter_order_paging(mlflow_env: Any) -> None:
    c = MlflowClient()
    prefix = unique("page")
    ids = [c.create_experiment(f"{prefix}-{i}") for i in range(5)]
    page = c.search_experiments(
        filter_string=f"name LIKE '{prefix}-%'", max_results=2, order_by=["name ASC"]
    )
    names = [e.name for e in page]
    while page.token:
        page = c.search_experiments(
            filter_string=f"name LIKE '{prefix}-%'",
            max_results=2,
            order_by=["name ASC"],
            page_token=page.token,
        )
        names += [e.name for e in page]
    assert names == [f"{prefix}-{i}" for i in range(5)]
    assert len(ids) == 5


def test_runs_params_metrics_tags_and_nesting(mlflow_env: Any) -> None:
    mlflow.set_experiment(unique("runs"))
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"epochs": 3, "optimizer": "adam"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=1000 + step)
        mlflow.log_metrics({"acc": 0.9, "f1": float("nan")})
        mlflow.set_tags({"team": "vision", "tmp": "x"})
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("child_metric", 1)
    c = MlflowClient()
    c.delete_tag(parent.info.run_id, "tmp")
    run = c.get_run(parent.info.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "parent"
    assert run.info.end_time is not None and run.info.start_time <= run.info.end_time
    assert run.data.params == {"lr": "0.1", "epochs": "3", "optimizer": "adam"}
    assert run.data.metrics["loss"] == pytest.approx(0.2) and run.data.metrics["acc"] == 0.9
    assert np.isnan(run.data.metrics["f1"])
    assert run.data.tags["team"] == "vision" and "tmp" not in run.data.tags
    kid = c.get_run(child.info.run_id)
    assert kid.data.tags["mlflow.parentRunId"] == parent.info.run_id
    history = c.get_metric_history(parent.info.run_id, "loss")
    assert [(m.step, m.timestamp) for m in history] == [(s, 1000 + s) for s in range(5)]
    c.delete_run(child.info.run_id)
    assert c.get_run(child.info.run_id).info.lifecycle_stage == "deleted"
    c.restore_run(child.info.run_id)
    assert c.get_run(child.info.run_id).info.lifecycle_stage == "active"


def test_log_batch_and_search(mlflow_env: Any) -> None:
    c = MlflowClient()
    eid = c.create_experiment(unique("search"))
    for i in range(12):
        run = c.create_run(eid, run_name=f"r{i:02d}")
        c.log_batch(
            run.info.run_id,
            metrics=[Metric("acc", i / 10, 0, s) for s in range(3)],
            params=[Param("lr", "0.1" if i % 2 else "0.01")],
            tags=[RunTag("x", "my-y-tag" if i % 3 == 0 else "other")],
        )
        c.set_terminated(run.info.run_id, "FINISHED" if i != 9 else "FAILED")
    flt = (
        "metrics.acc > 0.2 and params.lr = '0.1' and tags.x LIKE '%y%' "
        "and attributes.status = 'FINISHED'"
    )
    found = c.search_runs([eid], flt, order_by=["metrics.acc DESC"])
    assert [r.info.run_name for r in found] == ["r03"]
    ordered = c.search_runs([eid], order_by=["metrics.acc DESC"], max_results=5)
    assert [r.info.run_name for r in ordered] == ["r11", "r10", "r09", "r08", "r07"]
    seen, token = [], None
    while True:
        page = c.search_runs([eid], max_results=5, page_token=token)
        seen += [r.info.run_id for r in page]
        token = page.token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 12
    frame = mlflow.search_runs([eid], filter_string="params.lr = '0.01'")
    assert len(frame) == 6 and "metrics.acc" in frame.columns


def test_chart_query_samples_long_history(mlflow_env: Any) -> None:
    c = MlflowClient()
    run = c.create_run(c.create_experiment(unique("chart")))
    rid = run.info.run_id
    for chunk in range(10):
        c.log_batch(
            rid,
            metrics=[
                Metric("loss", float(s), 1, s) for s in range(chunk * 1000, chunk * 1000 + 1000)
            ],
        )
    assert len(c.get_metric_history(rid, "loss")) == 10_000
    r = httpx.get(
        f"{mlflow_env.url}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
        params={"run_ids": rid, "metric_key": "loss", "max_results": 320},
        headers={"Authorization": f"Bearer {mlflow_env.token}"},
    )
    assert r.status_code == 200, r.text
    steps = [m["step"] for m in r.json()["metrics"]]
    assert 300 <= len(steps) <= 320 and steps[0] == 0 and steps[-1] == 9999
    assert all(m["run_id"] == rid for m in r.json()["metrics"])


def test_dataset_inputs(mlflow_env: Any) -> None:
    import pandas as pd

    mlflow.set_experiment(unique("data"))
    df = pd.DataFrame({"a": [1, 2, 3], "b": [4.0, 5.0, 6.0]})
    with mlflow.start_run() as run:
        mlflow.log_input(mlflow.data.from_pandas(df, name="tiny"), context="training")
    inputs = MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs
    assert [i.dataset.name for i in inputs] == ["tiny"]
    assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "training"


def test_large_artifact_round_trip(mlflow_env: Any, tmp_path: Path) -> None:
    src = tmp_path / "blob.bin"
    src.write_bytes(os.urandom(50 * 1024 * 1024))
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    mlflow.set_experiment(unique("artifacts"))
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(src), artifact_path="data")
        mlflow.log_text("hello", "notes/readme.txt")
    c = MlflowClient()
    listed = {f.path: f for f in c.list_artifacts(run.info.run_id, "data")}
    assert listed["data/blob.bin"].file_size == 50 * 1024 * 1024
    out = c.download_artifacts(run.info.run_id, "data/blob.bin", str(tmp_path / "down"))
    assert hashlib.sha256(Path(out).read_bytes()).hexdigest() == digest
    assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes/readme.txt") == "hello"


def test_sklearn_autolog_and_registry(mlflow_env: Any) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    mlflow.set_experiment(unique("autolog"))
    X, y = load_iris(return_X_y=True)
    mlflow.sklearn.autolog(log_input_examples=False, log_datasets=False)
    try:
        with mlflow.start_run() as run:
            LogisticRegression(max_iter=300).fit(X, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    c = MlflowClient()
    got = c.get_run(run.info.run_id)
    assert got.data.params["max_iter"] == "300"
    assert got.data.metrics["training_accuracy_score"] > 0.9
    models = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id], output_format="list"
    )
    assert [m.source_run_id for m in models] == [run.info.run_id]

    name = unique("iris")
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    assert version.version == "1" and version.run_id == run.info.run_id
    c.set_registered_model_alias(name, "champion", version.version)
    assert c.get_model_version_by_alias(name, "champion").version == "1"
    c.set_model_version_tag(name, "1", "validated", "yes")
    assert c.get_model_version(name, "1").tags["validated"] == "yes"
    assert [m.name for m in c.search_registered_models(filter_string=f"name = '{name}'")] == [name]
    assert [v.version for v in c.search_model_versions(f"name = '{name}'")] == ["1"]
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert list(model.predict(X[:3])) == [0, 0, 0]
