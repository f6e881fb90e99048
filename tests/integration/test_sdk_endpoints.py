"""``MLClient`` serving operations against a real server: online and batch, end to end."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lapis import (
    BatchEndpoint,
    CodeConfiguration,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    MLClient,
    Model,
)
from lapis.errors import LapisError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def client(lapis_server: Any) -> Iterator[MLClient]:
    with MLClient(lapis_server.url, lapis_server.token) as ml:
        yield ml


def test_online_endpoint_from_python(client: MLClient) -> None:
    uid = uuid.uuid4().hex[:8]
    ep, model = f"sdk-{uid}", f"sdk-linear-{uid}"
    client.models.create_or_update(Model(name=model, path=EXAMPLES / "endpoints" / "model-1"))
    made = client.online_endpoints.begin_create_or_update(
        ManagedOnlineEndpoint(name=ep, description="from python")
    ).result()
    assert made["scoring_uri"].endswith(f"/api/v1/endpoints/{ep}/score")

    blue = ManagedOnlineDeployment(
        name="blue",
        endpoint_name=ep,
        model=f"azureml:{model}:1",
        code_configuration=CodeConfiguration(code="onlinescoring", scoring_script="score.py"),
        environment_variables={"SCORE_ROUND": "3"},
    )
    poller = client.online_deployments.begin_create_or_update(
        blue, all_traffic=True, base_dir=EXAMPLES / "endpoints"
    )
    d = poller.result(timeout=120)
    assert d["provisioning_state"] == "Succeeded" and poller.done()
    assert client.online_endpoints.get(ep)["traffic"] == {"blue": 100}

    answer = client.online_endpoints.invoke(
        ep, request_file=EXAMPLES / "endpoints" / "sample-request.json"
    )
    assert json.loads(answer) == [4.75, -1.5]
    assert json.loads(client.online_endpoints.invoke(ep, request={"data": [[1, 0, 0]]})) == [0.75]
    with pytest.raises(LapisError, match=r"answered 500.*request id"):
        client.online_endpoints.invoke(ep, request={"data": [[1, 2]]})  # wrong width: script bug
    assert "init: loaded a linear model" in client.online_deployments.get_logs("blue", ep)
    assert [x["name"] for x in client.online_deployments.list(ep)] == ["blue"]

    keys = client.online_endpoints.get_keys(ep)
    new = client.online_endpoints.begin_regenerate_keys(ep, key_type="primary").result()
    assert new["primaryKey"] != keys["primaryKey"] and new["secondaryKey"] == keys["secondaryKey"]

    client.online_endpoints.begin_create_or_update(
        {"name": ep, "description": "updated", "traffic": {"blue": 100}}
    ).result()
    assert client.online_endpoints.get(ep)["description"] == "updated"
    client.online_endpoints.begin_delete(ep).result()
    assert ep not in [e["name"] for e in client.online_endpoints.list()]


def test_batch_endpoint_from_python(client: MLClient, tmp_path: Path) -> None:
    uid = uuid.uuid4().hex[:8]
    ep, model = f"bsdk-{uid}", f"house-linear-{uid}"
    client.models.create_or_update(Model(name=model, path=EXAMPLES / "batch" / "model"))
    client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=ep)).result()
    spec = (EXAMPLES / "batch" / "deployment.yml").read_text()
    deployment = EXAMPLES / "batch" / f"deployment-{uid}.yml"
    deployment.write_text(spec.replace("house-prices-linear", model).replace("house-prices", ep))
    try:
        d = client.batch_deployments.begin_create_or_update(deployment).result()
    finally:
        deployment.unlink()
    assert d["name"] == "linear"
    assert client.batch_endpoints.get(ep)["defaults"]["deployment_name"] == "linear"

    job = client.batch_endpoints.invoke(ep, input=EXAMPLES / "batch" / "data")
    final = client.jobs.stream(job.name, out=open("/dev/null", "w"))  # noqa: SIM115
    assert final.status == "Completed", final.status_reason
    client.jobs.download(job.name, download_path=tmp_path, output_name="score")
    rows = (tmp_path / "named-outputs" / "score" / "predictions.csv").read_text().splitlines()
    assert len(rows) >= 5
    assert [j.name for j in client.batch_endpoints.list_jobs(ep)] == [job.name]
