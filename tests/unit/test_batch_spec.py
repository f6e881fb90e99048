"""Batch-endpoint and batch-deployment YAML: Azure's shape, defaults, file:line errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lapis.endpoints.runtime.batch_scoring import to_lines
from lapis.errors import InvalidParameterValue
from lapis.specs.batch import parse_batch_deployment, parse_batch_endpoint
from lapis.specs.yaml_lines import load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "batch"

DEPLOYMENT = """\
name: blue
endpoint_name: scorer
model: azureml:digits:3
code_configuration:
  code: src
  scoring_script: score.py
"""


def deployment(extra: str = "", base: str = DEPLOYMENT) -> str:
    return base + textwrap.dedent(extra)


def error(text: str, parse: object = parse_batch_deployment) -> str:
    with pytest.raises(InvalidParameterValue) as info:
        parse(load(text, "dep.yml"))  # type: ignore[operator]
    return info.value.message


def test_examples_load_with_azure_defaults() -> None:
    e = parse_batch_endpoint(load((EXAMPLES / "endpoint.yml").read_text(), "endpoint.yml"))
    assert e.name == "house-prices" and e.tags == {"team": "examples"}
    d = parse_batch_deployment(load((EXAMPLES / "deployment.yml").read_text(), "deployment.yml"))
    assert (d.model_name, d.model_version, d.model_label) == ("house-prices-linear", None, "latest")
    assert d.settings()["workers"] == 2 and d.mini_batch_size == 2
    plain = parse_batch_deployment(load(DEPLOYMENT, "dep.yml"))
    assert plain.settings() == {
        "scoring_script": "score.py",
        "workers": 1,
        "mini_batch_size": 10,
        "output_action": "append_row",
        "output_file_name": "predictions.csv",
        "max_retries": 3,
        "timeout": 30,
        "error_threshold": -1,
        "logging_level": "info",
    }
    assert plain.compute == "local" and plain.environment.kind == "system"
    assert plain.document()["model"] == "azureml:digits:3"


def test_workers_are_instances_times_concurrency() -> None:
    d = parse_batch_deployment(
        load(
            deployment(
                """\
                compute: azureml:cpu-box
                resources:
                  instance_count: 2
                max_concurrency_per_instance: 3
                output_action: summary_only
                retry_settings:
                  max_retries: 0
                  timeout: 5
                error_threshold: 12
                environment: azureml:sklearn-env:2
                """
            ),
            "dep.yml",
        )
    )
    assert d.settings()["workers"] == 6 and d.compute == "cpu-box"
    assert (d.max_retries, d.timeout, d.error_threshold) == (0, 5, 12)
    assert d.output_action == "summary_only"
    assert (d.environment.name, d.environment.version) == ("sklearn-env", "2")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("mini_batch_sise: 5\n", "dep.yml:7: 'mini_batch_sise' is not a batch deployment setting"),
        ("mini_batch_size: 0\n", "dep.yml:7: 'mini_batch_size' must be from 1 to 100000, got 0"),
        ("output_action: append\n", "dep.yml:7: 'output_action' must be one of append_row"),
        ("retry_settings:\n  retries: 2\n", "dep.yml:8: 'retry_settings.retries' is not a"),
        ("retry_settings:\n  timeout: -1\n", "dep.yml:8: 'retry_settings.timeout' must be from 1"),
        ("error_threshold: -2\n", "dep.yml:7: 'error_threshold' must be from -1"),
        ("error_threshold: lots\n", "dep.yml:7: 'error_threshold' must be a whole number"),
        ("output_file_name: ../x.csv\n", "dep.yml:7: 'output_file_name' must be a plain file name"),
        ("logging_level: loud\n", "dep.yml:7: 'logging_level' must be one of debug"),
        ("type: pipeline\n", "dep.yml:7: 'type' must be model"),
        (
            "resources:\n  instance_count: 8\nmax_concurrency_per_instance: 9\n",
            "instance_count * max_concurrency_per_instance is 72",
        ),
    ],
)
def test_deployment_errors_name_file_line_and_key(extra: str, expected: str) -> None:
    assert expected in error(deployment(extra))


def test_suggestions_and_required_keys() -> None:
    assert "(did you mean 'mini_batch_size'?)" in error(deployment("mini_batch_sise: 5\n"))
    assert "dep.yml:1: 'model' is required" in error("name: blue\n")
    assert "'name' is required" in error("model: m:1\n")
    assert "dep.yml:1: 'name' Invalid deployment name '9lives'" in error(
        "name: 9lives\nmodel: m:1\n"
    )
    text = DEPLOYMENT.replace("azureml:digits:3", "azureml://registries/x/models/y")
    assert "dep.yml:3: 'model' 'azureml://registries/x/models/y': registry" in error(text)
    text = DEPLOYMENT.replace("  scoring_script: score.py\n", "")
    assert "dep.yml:4: 'code_configuration.scoring_script' is required" in error(text)
    text = DEPLOYMENT.replace("score.py", "../escape.py")
    assert "must be a path inside the code folder" in error(text)


def test_no_code_configuration_means_mlflow_model() -> None:
    d = parse_batch_deployment(load("name: mlf\nmodel: iris@latest\n", "dep.yml"))
    assert d.scoring_script is None and d.model_label == "latest"
    assert "code_configuration" not in d.document()


def test_endpoint_yaml() -> None:
    e = parse_batch_endpoint(
        load("name: Scorer-1\nauth_mode: aad_token\ndefaults:\n  deployment_name: blue\n", "e.yml")
    )
    assert (e.name, e.default_deployment) == ("Scorer-1", "blue")
    assert "dep.yml:1: 'name' Invalid batch endpoint name 'x'" in error(
        "name: x\n", parse_batch_endpoint
    )
    assert "'defaults.deployment' is not a defaults setting (did you mean 'deployment_name'?)" in (
        error("name: abc\ndefaults:\n  deployment: b\n", parse_batch_endpoint)
    )
    assert "'traffic' is not a batch endpoint setting" in error(
        "name: abc\ntraffic: {a: 1}\n", parse_batch_endpoint
    )
    assert parse_batch_endpoint(load("description: new\n", "e.yml"), partial=True).name is None


def test_rows_from_run_results() -> None:
    assert to_lines(["a,1", ["b", 2], ("c", "x,y"), {"k": 3}, 4.5]) == [
        "a,1",
        "b,2",
        'c,"x,y"',
        "3",
        "4.5",
    ]
    with pytest.raises(TypeError, match="returned None"):
        to_lines(None)
    with pytest.raises(TypeError, match="returned a str"):
        to_lines("abc")
