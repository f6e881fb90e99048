"""The whole app in the test process: the lifespan runs the server's life.

The same flows the subprocess tests cover — a job from YAML to Completed with
its metrics, the MLflow client, the studio, an instance's lifecycle — through
an app started the way ``lapis server`` starts it, but in this process, so the
scheduler, job service, compute backends and auth are exercised where the test
can look at them (``server.ws``) and where coverage measures them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from jobkit import create_instance, log_text, run_coroutine, submit, wait, write_job

from lapis.api import compute as compute_api
from lapis.api import jobs as jobs_api
from lapis.server.app import create_app

pytestmark = pytest.mark.stores("sqlite", "postgres")


def test_the_lifespan_starts_the_scheduler_and_a_job_runs(
    inprocess_server: Any, tmp_path: Path
) -> None:
    ws = inprocess_server.ws
    assert ws.scheduler is not None and ws.instance_manager is not None
    job_file = write_job(
        tmp_path / "p",
        """\
        type: command
        code: src
        command: python train.py
        environment: system
        compute: local
        experiment_name: inproc
        """,
        {
            "src/train.py": """\
            import mlflow
            with mlflow.start_run():
                for step in range(3):
                    mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            print("trained")
            """
        },
    )
    job = submit(inprocess_server, job_file)
    done = wait(inprocess_server, job["name"], timeout=120)
    assert done["status"] == "Completed", (
        done["status_reason"],
        log_text(inprocess_server, job["name"]),
    )
    assert "trained" in log_text(inprocess_server, job["name"])
    stored = ws.jobs.get(job["name"], events=False)
    assert stored.handle is not None and stored.handle["dir"].endswith(job["name"])
    history, _ = ws.tracking.metric_history(done["run_id"], "loss")
    assert [m.value for m in history] == [1.0, 0.5, 1.0 / 3]
    # the answers are the typed contracts the routes declare
    with inprocess_server.client() as c:
        name = job["name"]
        jobs_api.JobOut.model_validate(c.get(f"/api/v1/jobs/{name}").json())
        listed = jobs_api.JobList.model_validate(c.get("/api/v1/jobs").json())
        assert name in [j.name for j in listed.jobs]
        logs = jobs_api.JobLogs.model_validate(c.get(f"/api/v1/jobs/{name}/logs").json())
        assert logs.terminal and "trained" in logs.data
        files = jobs_api.JobFiles.model_validate(c.get(f"/api/v1/jobs/{name}/files").json())
        assert any(f.path.endswith("std_log.txt") for f in files.files)


def test_an_instance_goes_through_its_backend(inprocess_server: Any) -> None:
    name = create_instance(inprocess_server)
    assert [n.state for n in inprocess_server.ws.compute.nodes(name)] == ["Running"]
    with inprocess_server.client() as c:
        shown = compute_api.ComputeDetail.model_validate(c.get(f"/api/v1/computes/{name}").json())
        assert [n.state for n in shown.nodes] == ["Running"]
        assert "cluster" in shown.unsupported["multi_node"]
        compute_api.ComputeList.model_validate(c.get("/api/v1/computes").json())
        compute_api.SizeList.model_validate(c.get("/api/v1/compute-sizes").json())
        assert c.post(f"/api/v1/computes/{name}/stop").status_code == 200
        deadline = time.monotonic() + 15
        while c.get(f"/api/v1/computes/{name}").json()["state"] != "Stopped":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        from lapis.sdk.client import MLClient

        with MLClient(inprocess_server.url, inprocess_server.token) as ml:
            typed = ml.compute.get(name).contract()  # the SDK reads the same wire model
            assert isinstance(typed, compute_api.ComputeOut) and typed.name == name
            assert next(c.name for c in ml.compute.list()) == "local"
        gone = c.delete(f"/api/v1/computes/{name}")
        assert compute_api.ComputeDeleted.model_validate(gone.json()).deleted


def test_asgi_transport_without_background_answers_but_runs_nothing(
    inprocess_server: Any,
) -> None:
    """A second app on the same workspace, no lifespan work: requests only (route tests)."""

    app = create_app(inprocess_server.ws)

    async def go() -> tuple[int, int]:
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {inprocess_server.token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://app", headers=headers
        ) as c:
            health = await c.get("/healthz")
            computes = await c.get("/api/v1/computes")
            return health.status_code, computes.status_code

    assert run_coroutine(go()) == (200, 200)


def test_tracking_and_environment_answers_match_their_contracts(inprocess_server: Any) -> None:
    from lapis.api import environments as env_api
    from lapis.api import tracking as tracking_api

    with inprocess_server.client() as c:
        me = tracking_api.WhoAmI.model_validate(c.get("/api/v1/whoami").json())
        assert "workspaces/jobs/write" in me.actions
        run = tracking_api.RunOut.model_validate(
            c.post("/api/v1/runs", json={"experiment_name": "contracts"}).json()
        )
        body = {"metrics": {"key": ["a", "a"], "value": [1.0, 2.0], "step": [0, 1],
                            "timestamp": [1, 2]}, "params": {"p": 1}}  # fmt: skip
        sent = c.post(f"/api/v1/runs/{run.run_id}/log", content=_json(body))
        assert tracking_api.Logged.model_validate(sent.json()).metrics == 2
        history = tracking_api.MetricHistory.model_validate(
            c.get(f"/api/v1/runs/{run.run_id}/metrics/a/history").json()
        )
        assert [p.value for p in history.points] == [1.0, 2.0]
        ended = tracking_api.RunOut.model_validate(
            c.post(f"/api/v1/runs/{run.run_id}/end", json={}).json()
        )
        assert ended.status == "FINISHED" and ended.params == {"p": "1"}
        listed = tracking_api.RunList.model_validate(
            c.get("/api/v1/runs", params={"experiment": "contracts"}).json()
        )
        assert [r.run_id for r in listed.runs] == [run.run_id]
        tracking_api.ExperimentList.model_validate(c.get("/api/v1/experiments").json())
        tracking_api.ExperimentOut.model_validate(c.get("/api/v1/experiments/contracts").json())

        made = c.post("/api/v1/environments", json={"name": "img-only", "image": "python:3.11"})
        env = env_api.EnvironmentOut.model_validate(made.json())
        assert (env.name, env.kind) == ("img-only", "system")
        env_api.EnvironmentOut.model_validate(c.get("/api/v1/environments/img-only").json())
        env_api.EnvironmentList.model_validate(c.get("/api/v1/environments").json())
        env_api.EnvironmentList.model_validate(
            c.get("/api/v1/environments/img-only/versions").json()
        )
        built = c.post(f"/api/v1/environments/img-only/versions/{env.version}/build")
        assert env_api.BuildResult.model_validate(built.json()).cache_hit
        archived = c.post(f"/api/v1/environments/img-only/versions/{env.version}/archive")
        assert env_api.EnvironmentOut.model_validate(archived.json()).archived


def test_model_registry_answers_match_their_contracts(inprocess_server: Any) -> None:
    from lapis.api import models as models_api

    with inprocess_server.client() as c:
        made = c.post("/api/v1/models", json={"name": "contract-model", "upload": True})
        assert made.status_code == 201, made.text
        pending = models_api.ModelDetail.model_validate(made.json())
        assert pending.status == "PENDING_REGISTRATION"
        base = f"/api/v1/models/contract-model/versions/{pending.version}"
        put = c.put(f"{base}/files/model.pkl", content=b"weights")
        assert models_api.UploadedFile.model_validate(put.json()).size == 7
        ready = models_api.ModelDetail.model_validate(c.post(f"{base}/ready").json())
        assert ready.status == "READY" and ready.lineage.deployments == []
        files = models_api.ModelFiles.model_validate(c.get(f"{base}/files").json())
        assert [f.path.rsplit("/", 1)[-1] for f in files.files] == ["model.pkl"]
        listed = models_api.ModelList.model_validate(
            c.get("/api/v1/models", params={"name": "contract-model"}).json()
        )
        assert [m.version for m in listed.models] == [pending.version]
        archived = models_api.ModelDetail.model_validate(c.post(f"{base}/archive").json())
        restored = models_api.ModelDetail.model_validate(c.post(f"{base}/restore").json())
        assert archived.archived and not restored.archived
        shown = c.get("/api/v1/models/contract-model/versions/latest")
        assert models_api.ModelDetail.model_validate(shown.json()).version == pending.version


def _json(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()


def test_endpoint_answers_match_their_contracts(inprocess_server: Any) -> None:
    from lapis.api import endpoints as api

    with inprocess_server.client() as c:
        made = c.post("/api/v1/endpoints", json={"name": "contract-ep", "auth_mode": "key"})
        assert made.status_code == 201, made.text
        api.EndpointOut.model_validate(made.json())
        api.EndpointList.model_validate(c.get("/api/v1/endpoints").json())
        shown = api.EndpointDetail.model_validate(c.get("/api/v1/endpoints/contract-ep").json())
        assert shown.deployments == []
        keys = api.EndpointKeys.model_validate(
            c.post("/api/v1/endpoints/contract-ep/listKeys").json()
        )
        again = c.post("/api/v1/endpoints/contract-ep/regenerateKeys", json={"keyType": "primary"})
        assert api.KeyRegenerated.model_validate(again.json()).keyType == "Primary"
        fresh = c.post("/api/v1/endpoints/contract-ep/listKeys").json()
        assert fresh["primaryKey"] != keys.primaryKey and fresh["secondaryKey"] == keys.secondaryKey
        api.DeploymentList.model_validate(c.get("/api/v1/endpoints/contract-ep/deployments").json())
        metrics = c.get("/api/v1/endpoints/contract-ep/metrics", params={"window": 60})
        assert api.EndpointMetrics.model_validate(metrics.json()).totals.requests == 0
        assert api.Deleted.model_validate(c.delete("/api/v1/endpoints/contract-ep").json()).deleted

        made = c.post("/api/v1/batchEndpoints", json={"name": "contract-batch"})
        assert made.status_code == 201, made.text
        api.BatchEndpointOut.model_validate(made.json())
        api.BatchEndpointList.model_validate(c.get("/api/v1/batchEndpoints").json())
        api.BatchDeploymentList.model_validate(
            c.get("/api/v1/batchEndpoints/contract-batch/deployments").json()
        )
        gone = c.delete("/api/v1/batchEndpoints/contract-batch")
        assert api.Deleted.model_validate(gone.json()).deleted
