"""Entities that are both built in code and answered by the server (azure-ai-ml's shape)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lapis.errors import InvalidParameterValue, LapisError
from lapis.ml.constants import AssetTypes
from lapis.ml.entities import (
    BatchRetrySettings,
    BuildContext,
    CodeConfiguration,
    Data,
    Environment,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    Model,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
)
from lapis.sdk.entities import command
from lapis.sdk.views import Poller

ANSWER = {
    "name": "ep",
    "auth_mode": "key",
    "description": None,
    "tags": {},
    "traffic": {"blue": 100},
    "mirror_traffic": {},
    "scoring_uri": "http://h/api/v1/endpoints/ep/score",
    "provisioning_state": "Succeeded",
    "created_by": "admin",
    "created_at": 1,
    "updated_at": 2,
}


def test_an_answer_reads_as_attributes_and_items_and_sends_back_only_changes() -> None:
    e = ManagedOnlineEndpoint._from(dict(ANSWER), "http://h")
    assert e.scoring_uri == e["scoring_uri"] == ANSWER["scoring_uri"]
    assert e.traffic == {"blue": 100} and "provisioning_state" in e
    assert e.studio_url == "http://h/endpoints/ep"
    assert e._changes() == {}
    e.traffic = {"blue": 90, "green": 10}
    e.description = "now described"
    assert e._changes() == {"traffic": {"blue": 90, "green": 10}, "description": "now described"}
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = e.nope


def test_a_built_entity_has_no_studio_page_and_its_document_skips_unset_fields() -> None:
    e = ManagedOnlineEndpoint(name="ep")
    assert e.studio_url is None and not e._answered
    assert e._document() == {"name": "ep", "auth_mode": "key"}


def test_answers_that_break_the_wire_contract_are_refused() -> None:
    with pytest.raises(LapisError, match="not a EndpointOut"):
        ManagedOnlineEndpoint._from({"name": "ep"})


def test_nested_entities_are_sent_by_reference_or_inline(tmp_path: Path) -> None:
    conda = tmp_path / "conda.yml"
    conda.write_text("dependencies:\n  - python=3.11\n")
    registered = Model._from(
        {
            "name": "m",
            "version": 3,
            "type": "custom_model",
            "path": None,
            "description": None,
            "tags": {},
            "properties": {},
            "archived": False,
            "status": "READY",
            "status_message": None,
            "stage": None,
            "aliases": [],
            "run_id": None,
            "job": None,
            "created_by": None,
            "created_at": 1,
            "updated_at": 1,
        }
    )
    d = ManagedOnlineDeployment(
        name="blue",
        endpoint_name="ep",
        model=registered,
        code_configuration=CodeConfiguration(code="./src", scoring_script="score.py"),
        environment=Environment(image="img", conda_file=str(conda)),
    )
    doc = d._document()
    assert doc["model"] == "azureml:m:3" and registered.id == "azureml:m:3"
    assert doc["environment"] == {"image": "img", "conda_file": conda.read_text()}
    assert doc["code_configuration"] == {"code": "./src", "scoring_script": "score.py"}
    inline = ManagedOnlineDeployment(name="g", endpoint_name="ep", model=Model(path="weights"))
    assert inline._document()["model"] == {
        "path": str(Path("weights").resolve()),
        "type": "custom_model",
    }
    assert Environment(name="lapis-sklearn")._as_field() == "azureml:lapis-sklearn@latest"
    assert Environment(build=BuildContext(path="ctx"))._as_field() == {
        "build": {"path": str(Path("ctx").resolve())}
    }
    with pytest.raises(InvalidParameterValue, match="conda_file: file not found"):
        Environment(conda_file="missing.yml")._as_field()


def test_a_data_entity_as_a_job_input_is_its_path() -> None:
    job = command(
        command="cat ${{inputs.d}}",
        inputs={"d": Data(path="x.csv", type=AssetTypes.URI_FILE)},
        environment=Environment(image="img"),
    )
    doc = job.to_dict(Path("/base"))
    # as azure-ai-ml: a Data's relative path is taken from the current folder
    assert doc["inputs"]["d"] == {"type": "uri_file", "path": str(Path("x.csv").resolve())}
    assert doc["environment"] == {"image": "img"}


def test_a_model_batch_deployment_writes_azures_current_schema() -> None:
    d = ModelBatchDeployment(
        name="scorer",
        endpoint_name="be",
        model="azureml:m:1",
        settings=ModelBatchDeploymentSettings(
            instance_count=2,
            mini_batch_size=5,
            retry_settings=BatchRetrySettings(max_retries=1),
        ),
    )
    assert d._document() == {
        "type": "model",
        "name": "scorer",
        "endpoint_name": "be",
        "model": "azureml:m:1",
        "settings": {"mini_batch_size": 5, "retry_settings": {"max_retries": 1}},
        "resources": {"instance_count": 2},
    }


def test_a_poller_waits_once_and_raises_on_failure() -> None:
    calls: list[float | None] = []

    def wait(timeout: float | None) -> dict[str, str]:
        calls.append(timeout)
        return {"name": "d", "provisioning_state": "Failed", "state_reason": "init() raised"}

    p = Poller(
        {"name": "d", "provisioning_state": "Creating"},
        wait,
        state=lambda v: v["provisioning_state"],
        reason=lambda v: v.get("state_reason"),
    )
    assert p.status() == "InProgress" and not p.done()
    p.wait(5)
    assert p.status() == "Failed" and calls == [5]
    with pytest.raises(LapisError, match="failed: init\\(\\) raised"):
        p.result()
    assert calls == [5]  # done: no second wait
