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

pytestmark = [pytest.mark.timeout(300), pytest.mark.stores("sqlite", "postgres")]


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
    run_id = c.create_run(eid).info.run_id
    c.delete_experiment(eid)
    assert c.get_experiment(eid).lifecycle_stage == "deleted"
    deleted = c.search_experiments(view_type=mlflow.entities.ViewType.DELETED_ONLY)
    assert eid in [e.experiment_id for e in deleted]
    # Like MLflow's SQL store: deleting an experiment deletes its runs; restoring restores them.
    assert c.get_run(run_id).info.lifecycle_stage == "deleted"
    c.restore_experiment(eid)
    assert c.get_experiment(eid).lifecycle_stage == "active"
    assert c.get_run(run_id).info.lifecycle_stage == "active"
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
    desc = c.search_experiments(filter_string=f"name LIKE '{prefix}-%'", order_by=["name DESC"])
    assert [e.experiment_id for e in desc] == ids[::-1]
    c.set_experiment_tag(ids[3], "stage", "prod")
    tagged = c.search_experiments(filter_string=f"name LIKE '{prefix}-%' and tags.stage = 'prod'")
    assert [e.experiment_id for e in tagged] == [ids[3]]
    c.delete_experiment_tag(ids[3], "stage")
    assert "stage" not in c.get_experiment(ids[3]).tags
    c.delete_experiment(ids[0])
    active = c.search_experiments(filter_string=f"name LIKE '{prefix}-%'")
    assert sorted(e.experiment_id for e in active) == sorted(ids[1:])
    everything = c.search_experiments(
        filter_string=f"name LIKE '{prefix}-%'", view_type=mlflow.entities.ViewType.ALL
    )
    assert sorted(e.experiment_id for e in everything) == sorted(ids)
    assert c.get_experiment_by_name(unique("never-created")) is None


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


def test_run_update_and_view_types(mlflow_env: Any) -> None:
    c = MlflowClient()
    eid = c.create_experiment(unique("views"))
    keep = c.create_run(eid, run_name="keep", tags={"k": "v"})
    gone = c.create_run(eid, run_name="gone")
    assert keep.info.status == "RUNNING" and keep.info.lifecycle_stage == "active"
    c.update_run(keep.info.run_id, name="kept")
    c.set_terminated(keep.info.run_id, "KILLED", end_time=keep.info.start_time + 5)
    got = c.get_run(keep.info.run_id)
    assert got.info.run_name == "kept" and got.data.tags["mlflow.runName"] == "kept"
    assert got.info.status == "KILLED" and got.info.end_time == keep.info.start_time + 5
    assert got.data.tags["k"] == "v" and got.info.experiment_id == eid
    c.delete_run(gone.info.run_id)
    view = mlflow.entities.ViewType

    def names(view_type: int) -> list[str]:
        runs = c.search_runs([eid], run_view_type=view_type, order_by=["attributes.run_name"])
        return [r.info.run_name for r in runs]

    assert names(view.ACTIVE_ONLY) == ["kept"]
    assert names(view.DELETED_ONLY) == ["gone"]
    assert names(view.ALL) == ["gone", "kept"]


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
    # Paging through a sorted search gives the same order as one big page.
    full = [r.info.run_id for r in c.search_runs([eid], order_by=["metrics.acc DESC"])]
    paged, token = [], None
    while True:
        page = c.search_runs([eid], order_by=["metrics.acc DESC"], max_results=5, page_token=token)
        paged += [r.info.run_id for r in page]
        token = page.token
        if not token:
            break
    assert paged == full and len(full) == 12

    def names(flt: str, order: str = "attributes.run_name ASC") -> list[str]:
        return [r.info.run_name for r in c.search_runs([eid], flt, order_by=[order])]

    assert names("params.lr != '0.1' and metrics.acc >= 0.8") == ["r08", "r10"]
    assert names("attributes.status = 'FAILED'") == ["r09"]
    assert names("tags.x = 'other' and metrics.acc < 0.3") == ["r01", "r02"]
    assert names("attributes.run_name LIKE 'r1%'", "attributes.run_name DESC") == ["r11", "r10"]
    assert names("metrics.no_such_metric > 0") == []
    by_param = c.search_runs(
        [eid], "metrics.acc <= 0.3", order_by=["params.lr DESC", "metrics.acc"]
    )
    assert [r.info.run_name for r in by_param] == ["r01", "r03", "r00", "r02"]
    frame = mlflow.search_runs([eid], filter_string="params.lr = '0.01'")
    assert len(frame) == 6 and "metrics.acc" in frame.columns


def test_metric_history_pages_past_the_client_page_size(mlflow_env: Any) -> None:
    """The client fetches history 25,000 points a page; 30,000 points need two pages."""
    c = MlflowClient()
    rid = c.create_run(c.create_experiment(unique("history"))).info.run_id
    for chunk in range(30):
        c.log_batch(
            rid,
            metrics=[
                Metric("loss", s / 7, 1_000_000 + s, s)
                for s in range(chunk * 1000, chunk * 1000 + 1000)
            ],
        )
    history = c.get_metric_history(rid, "loss")
    assert len(history) == 30_000
    assert sorted((m.step, m.value, m.timestamp) for m in history) == [
        (s, s / 7, 1_000_000 + s) for s in range(30_000)
    ]
    assert c.get_run(rid).data.metrics["loss"] == 29_999 / 7
    headers = {"Authorization": f"Bearer {mlflow_env.token}"}
    seen, token = 0, None
    with httpx.Client(base_url=mlflow_env.url, headers=headers, timeout=60) as http:
        while True:
            params: dict[str, Any] = {"run_id": rid, "metric_key": "loss", "max_results": 7000}
            if token:
                params["page_token"] = token
            body = http.get("/api/2.0/mlflow/metrics/get-history", params=params).json()
            assert len(body["metrics"]) <= 7000
            seen += len(body["metrics"])
            token = body.get("next_page_token")
            if not token:
                break
    assert seen == 30_000


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
    assert steps == sorted(set(steps))
    assert all(m["run_id"] == rid and m["value"] == float(m["step"]) for m in r.json()["metrics"])
    # Two runs at once, on the /api/2.0 path; a short run comes back whole.
    short = c.create_run(run.info.experiment_id).info.run_id
    c.log_batch(short, metrics=[Metric("loss", -s, 5, s) for s in range(10)])
    r = httpx.get(
        f"{mlflow_env.url}/api/2.0/mlflow/metrics/get-history-bulk-interval",
        params=[("run_ids", rid), ("run_ids", short), ("metric_key", "loss"), ("max_results", 50)],
        headers={"Authorization": f"Bearer {mlflow_env.token}"},
    )
    assert r.status_code == 200, r.text
    per_run: dict[str, list[int]] = {}
    for m in r.json()["metrics"]:
        per_run.setdefault(m["run_id"], []).append(m["step"])
    assert per_run[short] == list(range(10))
    assert len(per_run[rid]) <= 50 and per_run[rid][0] == 0 and per_run[rid][-1] == 9999


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
    top = {f.path: f.is_dir for f in c.list_artifacts(run.info.run_id)}
    assert top == {"data": True, "notes": True}
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


def test_log_model_register_and_load_by_alias(mlflow_env: Any) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    mlflow.set_experiment(unique("registry"))
    name = unique("logreg")
    c = MlflowClient()
    versions, infos = [], []
    for strength in (0.001, 10.0):  # heavily vs lightly regularised: different predictions
        with mlflow.start_run() as run:
            clf = LogisticRegression(C=strength, max_iter=500).fit(X, y)
            mlflow.log_param("C", strength)
            # Explicit requirements skip mlflow's slow inference subprocess.
            info = mlflow.sklearn.log_model(clf, name="model", pip_requirements=["scikit-learn"])
        assert info.run_id == run.info.run_id
        infos.append(info)
        versions.append(mlflow.register_model(info.model_uri, name, tags={"C": str(strength)}))
    assert [v.version for v in versions] == ["1", "2"]
    c.set_registered_model_alias(name, "champion", "2")
    c.set_registered_model_alias(name, "baseline", "1")
    c.set_registered_model_tag(name, "owner", "ana")
    model = c.get_registered_model(name)
    assert model.aliases == {"champion": "2", "baseline": "1"} and model.tags == {"owner": "ana"}
    assert c.get_model_version_by_alias(name, "baseline").tags == {"C": "0.001"}
    # The client drops model_id when it parses a version, so ask the logged model instead.
    logged = mlflow.get_logged_model(infos[1].model_id)
    assert logged.source_run_id == versions[1].run_id and logged.name == "model"
    assert logged.status == "READY"  # LoggedModelStatus.READY, not UNSPECIFIED
    assert logged.params == {"C": "10.0"}
    assert versions[1].source == f"models:/{infos[1].model_id}"

    deep = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    shallow = mlflow.pyfunc.load_model(f"models:/{name}@baseline")
    expected = LogisticRegression(C=10.0, max_iter=500).fit(X, y).predict(X)
    assert list(deep.predict(X)) == list(expected)
    assert list(shallow.predict(X)) != list(expected)

    c.set_registered_model_alias(name, "champion", "1")  # moving an alias
    assert c.get_model_version_by_alias(name, "champion").version == "1"
    c.delete_registered_model_alias(name, "baseline")
    assert c.get_registered_model(name).aliases == {"champion": "1"}
    with pytest.raises(MlflowException):
        c.get_model_version_by_alias(name, "baseline")
    c.set_model_version_tag(name, "2", "validated", "no")
    tagged = c.search_model_versions(f"name = '{name}' and tag.validated = 'no'")
    assert [v.version for v in tagged] == ["2"]
    found = c.search_registered_models(filter_string=f"name LIKE '{name[:-3]}%'")
    assert [m.name for m in found] == [name]
