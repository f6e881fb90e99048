"""MLflow 3 tracing with the unmodified client: ``@mlflow.trace``, ``mlflow.start_span``,
``get_trace``, ``search_traces`` (filters, order, pages), trace tags and
``delete_traces`` against a real Lapis server; and a job whose code is traced."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from jobkit import submit, wait

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

pytestmark = [pytest.mark.timeout(300), pytest.mark.stores("sqlite", "postgres")]


@pytest.fixture
def traced(mlflow_env: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")  # exported on return
    return mlflow_env


@mlflow.trace
def add(a: int, b: int) -> int:
    return a + b


@mlflow.trace(name="predict", span_type="CHAIN")
def predict(x: int) -> int:
    with mlflow.start_span(name="inner") as span:
        span.set_inputs({"x": x})
        y = add(x, 1)
        span.set_outputs({"y": y})
    return y * 2


@mlflow.trace(name="explode")
def explode() -> None:
    raise ValueError("boom")


def test_traced_calls_are_recorded_and_read_back_with_their_spans(traced: Any) -> None:
    mlflow.set_experiment(f"tracing-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run() as run:
        assert predict(3) == 8
    trace_id = mlflow.get_last_active_trace_id()
    trace = mlflow.get_trace(trace_id)
    assert trace.info.state.value == "OK"
    assert trace.info.tags["mlflow.traceName"] == "predict"
    assert trace.info.request_metadata["mlflow.sourceRun"] == run.info.run_id
    assert trace.info.execution_duration is not None and trace.info.execution_duration >= 0
    spans = {s.name: s for s in trace.data.spans}
    assert set(spans) == {"predict", "inner", "add"}
    assert spans["predict"].parent_id is None
    assert spans["inner"].parent_id == spans["predict"].span_id
    assert spans["add"].parent_id == spans["inner"].span_id
    assert spans["add"].inputs == {"a": 3, "b": 1} and spans["add"].outputs == 4
    assert spans["inner"].outputs == {"y": 4} and spans["predict"].outputs == 8
    assert spans["predict"].span_type == "CHAIN"

    with pytest.raises(ValueError):
        explode()
    failed = mlflow.get_trace(mlflow.get_last_active_trace_id())
    assert failed.info.state.value == "ERROR"


def test_search_filters_orders_pages_and_tags(traced: Any) -> None:
    exp_id = mlflow.set_experiment(f"tracing-{uuid.uuid4().hex[:8]}").experiment_id
    with mlflow.start_run() as run:
        for x in range(3):
            predict(x)
    with pytest.raises(ValueError):
        explode()
    client = MlflowClient()

    def search(**kw: Any) -> list[Any]:
        return mlflow.search_traces(locations=[exp_id], return_type="list", **kw)

    everything = search()
    assert len(everything) == 4
    times = [t.info.request_time for t in everything]
    assert times == sorted(times, reverse=True)  # newest first by default
    assert [t.info.request_time for t in search(order_by=["timestamp_ms ASC"])] == sorted(times)
    assert len(search(filter_string="trace.status = 'ERROR'")) == 1
    assert len(search(filter_string="attributes.status = 'OK'")) == 3
    assert len(search(filter_string="tags.`mlflow.traceName` = 'predict'")) == 3
    assert len(search(run_id=run.info.run_id)) == 3
    assert len(search(filter_string=f"timestamp_ms > {min(times)}")) == 3
    assert len(search(filter_string="execution_time_ms >= 0")) == 4
    spans = search(filter_string="name = 'predict'")[0].data.spans
    assert {s.name for s in spans} == {"predict", "inner", "add"}  # spans come along

    page = client.search_traces(locations=[exp_id], max_results=3)
    assert len(page) == 3 and page.token
    rest = client.search_traces(locations=[exp_id], max_results=3, page_token=page.token)
    assert len(rest) == 1

    target = everything[0].info.trace_id
    client.set_trace_tag(target, "reviewed", "yes")
    found = search(filter_string="tags.reviewed = 'yes'")
    assert [t.info.trace_id for t in found] == [target]
    client.delete_trace_tag(target, "reviewed")
    assert search(filter_string="tags.reviewed = 'yes'") == []

    with pytest.raises(MlflowException, match="Invalid attribute key 'bogus'"):
        search(filter_string="attributes.bogus = 1")

    assert client.delete_traces(exp_id, trace_ids=[target]) == 1
    assert len(search()) == 3
    with pytest.raises(MlflowException, match="not found"):
        client.get_trace(target)
    assert client.delete_traces(exp_id, max_timestamp_millis=max(times) + 1, max_traces=2) == 2
    assert len(search()) == 1


def test_trace_records_are_checked_and_spans_need_a_trace(traced: Any) -> None:
    server = traced
    with server.client() as http:
        bad = http.post("/api/3.0/mlflow/traces", json={"trace": {"trace_info": {"trace_id": "x"}}})
        assert bad.status_code == 400 and "trace_location" in bad.json()["message"]
        exp_id = http.post(
            "/api/2.0/mlflow/experiments/create", json={"name": f"t-{uuid.uuid4().hex[:8]}"}
        ).json()["experiment_id"]
        # spans can only be uploaded below a trace that exists
        nowhere = f"{exp_id}/traces/tr-{'0' * 32}/artifacts/traces.json"
        put = http.put(f"/api/2.0/mlflow-artifacts/artifacts/{nowhere}", content=b"{}")
        assert put.status_code == 403
        missing = http.get(f"/api/3.0/mlflow/traces/tr-{'1' * 32}")
        assert missing.status_code == 404
        assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_a_jobs_traced_code_lands_in_its_run(lapis_server: Any, tmp_path: Path) -> None:
    """The job's own token exports the trace (record and spans) into the job's experiment,
    and a trace made outside ``mlflow.start_run()`` is linked to the job's run."""
    code = tmp_path / "src"
    code.mkdir()
    (code / "serve.py").write_text(
        "import mlflow\n\n"
        "@mlflow.trace(name='score')\n"
        "def score(rows):\n"
        "    return [r * 2 for r in rows]\n\n"
        "print(score([1, 2, 3]))\n"
        "mlflow.flush_trace_async_logging()\n"
    )
    job_file = tmp_path / "job.yml"
    job_file.write_text(
        "type: command\ncode: src\ncommand: python serve.py\nenvironment: system\n"
        f"experiment_name: traced-job-{uuid.uuid4().hex[:6]}\n"
    )
    job = wait(lapis_server, submit(lapis_server, job_file)["name"], timeout=180)
    assert job["status"] == "Completed", job.get("status_reason")
    with httpx.Client(
        base_url=lapis_server.url, headers={"Authorization": f"Bearer {lapis_server.token}"}
    ) as http:
        found = http.post(
            "/api/3.0/mlflow/traces/search",
            json={
                "locations": [
                    {
                        "type": "MLFLOW_EXPERIMENT",
                        "mlflow_experiment": {"experiment_id": str(job["experiment_id"])},
                    }
                ]
            },
        ).json()["traces"]
        assert len(found) == 1
        info = found[0]
        assert info["trace_metadata"]["mlflow.sourceRun"] == job["run_id"]
        location = info["tags"]["mlflow.artifactLocation"]
        rel = location.split(":/", 1)[1]
        spans = http.get(f"/api/2.0/mlflow-artifacts/artifacts/{rel}/traces.json")
    assert spans.status_code == 200
    assert [s["name"] for s in json.loads(spans.content)["spans"]] == ["score"]
