"""Online-deployment YAML: Azure's shape, tolerant probe defaults, file:line errors."""

from __future__ import annotations

import pytest

from lapis.errors import InvalidParameterValue
from lapis.specs.deployment import parse_deployment
from lapis.specs.yaml_lines import load

GOOD = """\
$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json
name: blue
endpoint_name: my-endpoint
model: azureml:churn:3
code_configuration:
  code: onlinescoring
  scoring_script: score.py
environment: azureml:lapis-sklearn@latest
instance_type: Standard_DS3_v2
instance_count: 2
environment_variables:
  THREADS: 2
request_settings:
  request_timeout_ms: 9000
  max_concurrent_requests_per_instance: 4
  max_queue_wait_ms: 100
liveness_probe:
  period: 5
readiness_probe:
  initial_delay: 3
  failure_threshold: 10
app_insights_enabled: true
tags: {team: ml}
"""


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_deployment(load(text, "dep.yml"))


def fails(text: str, match: str) -> str:
    with pytest.raises(InvalidParameterValue) as info:
        parse(text)
    assert match in info.value.message, info.value.message
    return info.value.message


def test_azure_file_loads_with_every_key() -> None:
    spec = parse(GOOD)
    assert (spec.name, spec.endpoint_name, spec.instance_count) == ("blue", "my-endpoint", 2)
    assert spec.model is not None and (spec.model.name, spec.model.version) == ("churn", "3")
    assert (spec.code, spec.scoring_script) == ("onlinescoring", "score.py")
    assert spec.environment is not None and spec.environment.name == "lapis-sklearn"
    assert spec.environment.label == "latest"
    assert spec.environment_variables == {"THREADS": "2"}
    assert spec.request_settings.request_timeout_ms == 9000
    assert spec.request_settings.max_concurrent_requests_per_instance == 4
    assert spec.liveness_probe.period == 5 and spec.liveness_probe.failure_threshold == 30
    assert spec.readiness_probe.initial_delay == 3 and spec.readiness_probe.failure_threshold == 10
    assert spec.instance_type == "Standard_DS3_v2" and spec.app_insights_enabled is True
    doc = spec.document()
    assert (
        doc["model"] == "azureml:churn:3" and doc["code_configuration"]["code"] == "onlinescoring"
    )
    assert parse_deployment(doc).document() == doc  # the stored document parses back the same


def test_defaults_are_azure_request_settings_and_tolerant_probes() -> None:
    spec = parse(
        "name: blue\nmodel: churn@latest\ncode_configuration: {code: ., scoring_script: s.py}\n"
    )
    assert spec.model is not None and spec.model.label == "latest" and spec.model.version is None
    assert spec.instance_count == 1 and spec.environment is None  # None: Lapis' own interpreter
    assert spec.request_settings.request_timeout_ms == 5000
    assert spec.request_settings.max_concurrent_requests_per_instance == 1
    # liveness restarts only after 30 unanswered /health probes 10 s apart (after a 10 s delay)
    live = spec.liveness_probe
    assert (live.initial_delay, live.period, live.failure_threshold) == (10, 10, 30)
    assert spec.readiness_probe.initial_delay == 0


def test_mlflow_model_may_omit_code_but_custom_model_may_not() -> None:
    spec = parse("name: ml-dep\nmodel:\n  path: ./model\n  type: mlflow_model\n")
    assert spec.model is not None and spec.model.path == "./model" and spec.scoring_script is None
    msg = fails("name: cu-dep\nmodel:\n  path: ./model\n", "is required for a custom_model")
    assert msg.startswith("dep.yml:1: 'code_configuration'")


@pytest.mark.parametrize(
    ("text", "where", "match"),
    [
        ("name: blue\nmodle: a:1\n", "dep.yml:2: 'modle'", "did you mean 'model'"),
        ("name: blue\n", "dep.yml", "'model' is required"),
        ("name: 1blue\nmodel: a:1\n", "dep.yml:1: 'name'", "must start with a letter"),
        ("name: blue\nmodel: a\n", "dep.yml:2: 'model'", "is not a model reference"),
        ("name: blue\nmodel: {path: m, type: onnx}\n", "dep.yml:2: 'model.type'", "custom_model"),
        ("name: blue\nmodel: a:1\ninstance_count: 0\n", "dep.yml:3: 'instance_count'", "from 1"),
        ("name: blue\nmodel: a:1\ninstance_count: two\n", "dep.yml:3", "whole number"),
        (
            "name: blue\nmodel: a:1\ncode_configuration:\n  code: src\n",
            "dep.yml:3: 'code_configuration.scoring_script'",
            "is required",
        ),
        (
            "name: blue\nmodel: a:1\ncode_configuration:\n  code: src\n  scoring_script: ../x.py\n",
            "dep.yml:5: 'code_configuration.scoring_script'",
            "inside the code folder",
        ),
        (
            "name: blue\nmodel: a:1\nliveness_probe:\n  periode: 3\n",
            "dep.yml:4: 'liveness_probe.periode'",
            "did you mean 'period'",
        ),
        (
            "name: blue\nmodel: a:1\nreadiness_probe:\n  timeout: 0\n",
            "dep.yml:4: 'readiness_probe.timeout'",
            "from 1",
        ),
        (
            "name: blue\nmodel: a:1\nrequest_settings:\n  request_timeout_ms: -5\n",
            "dep.yml:4: 'request_settings.request_timeout_ms'",
            "from 1",
        ),
        ("name: blue\nmodel: a:1\nenvironment: 'bad env'\n", "dep.yml:3: 'environment'", "not"),
        ("name: blue\nmodel: a:1\ntags: [a]\n", "dep.yml:3: 'tags'", "mapping"),
    ],
)
def test_errors_name_file_line_and_key(text: str, where: str, match: str) -> None:
    msg = fails(text, match)
    assert msg.startswith(where), msg
