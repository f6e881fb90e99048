"""Azure ML command job YAML: accepted as Azure writes it, refused with file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from lapis.errors import InvalidParameterValue
from lapis.specs.job import load_job_file, parse_job, render_command

AZURE_JOB = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
type: command
display_name: train-digits
experiment_name: digits
description: Train a classifier
code: src
command: >-
  python train.py --data ${{inputs.training_data}} --lr ${{inputs.lr}}
  $[[--epochs ${{inputs.epochs}}]] --out ${{outputs.model_dir}}
environment: azureml:AzureML-sklearn-1.5@latest
compute: azureml:cpu-dev
inputs:
  training_data:
    type: uri_folder
    path: ./data
  lr: 0.01
  epochs:
    type: integer
    optional: true
outputs:
  model_dir:
    type: uri_folder
environment_variables:
  SEED: 42
limits:
  timeout: 600
tags:
  team: vision
"""


def test_an_azure_job_file_loads_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "job.yml"
    path.write_text(AZURE_JOB)
    spec = load_job_file(path)
    assert spec.compute == "cpu-dev" and spec.experiment_name == "digits"
    assert spec.code == str((tmp_path / "src").resolve())
    assert spec.environment.kind == "registered"
    assert (spec.environment.name, spec.environment.label) == ("AzureML-sklearn-1.5", "latest")
    assert spec.inputs["lr"].type == "number" and spec.inputs["lr"].value == 0.01
    assert spec.inputs["training_data"].path == "./data"
    assert spec.inputs["epochs"].optional and spec.outputs["model_dir"].type == "uri_folder"
    assert spec.environment_variables == {"SEED": "42"} and spec.timeout_seconds == 600
    assert spec.tags == {"team": "vision"}
    parts = spec.name.split("_")
    assert len(parts) == 3 and len(parts[2]) == 4  # adjective_noun_xxxx


def test_placeholders_and_optional_segments() -> None:
    spec = parse_job(AZURE_JOB)
    without = render_command(
        spec.command, {"training_data": "/d", "lr": "0.01", "epochs": None}, {"model_dir": "/o"}
    )
    assert without == "python train.py --data /d --lr 0.01  --out /o"
    with_epochs = render_command(
        spec.command, {"training_data": "/d", "lr": "1", "epochs": "3"}, {"model_dir": "/o"}
    )
    assert "--epochs 3" in with_epochs


def test_overrides_apply_before_validation() -> None:
    spec = parse_job(AZURE_JOB, overrides=["compute=gpu-box", "inputs.lr=0.5", "name=my_run"])
    assert spec.compute == "gpu-box" and spec.inputs["lr"].value == 0.5 and spec.name == "my_run"
    with pytest.raises(InvalidParameterValue, match="key=value"):
        parse_job(AZURE_JOB, overrides=["compute"])


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("command: echo hi\ncomand: x\n", ["<job>:2", "'comand'", "did you mean 'command'"]),
        ("type: command\nname: n\n", ["<job>:1", "'command' is required"]),
        ("command: echo ${{inputs.missing}}\n", ["<job>:1", "inputs.missing", "no input"]),
        ("command: echo ${{outputs.ou}}\noutputs:\n  out: {}\n", ["outputs.ou", "did you mean"]),
        ("command: x\nlimits:\n  timeout: soon\n", ["<job>:3", "'limits.timeout'", "seconds"]),
        (
            "command: x\ninputs:\n  a:\n    type: uri_flder\n    path: p\n",
            ["<job>:4", "inputs.a.type", "did you mean 'uri_folder'"],
        ),
        ("command: x\ninputs: [1, 2]\n", ["<job>:2", "'inputs' must be a mapping"]),
        ("command: [x\n", ["<job>:2", "malformed YAML"]),
        ("command: x\ntype: sweep\n", ["<job>:2", "sweep jobs are not supported yet"]),
        ("command: x\nenvironment: 'bad env!'\n", ["<job>:2", "not an environment reference"]),
        ("command: x\nresources:\n  instance_count: 0\n", ["<job>:3", "positive integer"]),
        (
            "command: x\ninputs:\n  a:\n    path: azureml:d@latest\n    mode: ro_mnt\n",
            ["<job>:5", "inputs.a.mode", "did you mean 'ro_mount'"],
        ),
        (
            "command: x\ninputs:\n  a:\n    path: azureml:d@latest\n    mode: rw_mount\n",
            ["<job>:5", "rw_mount is for outputs"],
        ),
        (
            "command: x\ninputs:\n  a:\n    path: p\n    mode: eval_mount\n",
            ["<job>:5", "eval_mount is for mltable inputs, not uri_folder"],
        ),
        ("command: x\noutputs:\n  o:\n    mode: download\n", ["<job>:4", "it is for inputs"]),
        (
            "command: x\noutputs:\n  o:\n    path: s3://bucket/out\n",
            ["<job>:4", "an output goes to a datastore: azureml://datastores/"],
        ),
        ("command: x\noutputs:\n  o:\n    version: '2'\n", ["<job>:4", "needs name:"]),
    ],
)
def test_bad_specs_name_file_line_and_key(text: str, fragments: list[str]) -> None:
    with pytest.raises(InvalidParameterValue) as err:
        parse_job(text)
    for fragment in fragments:
        assert fragment in err.value.message, err.value.message


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("azureml:my-env:3", ("registered", "my-env", "3", None)),
        ("my-env@latest", ("registered", "my-env", None, "latest")),
        ("sklearn-1.5", ("registered", "sklearn-1.5", None, "latest")),
        ("system", ("system", None, None, None)),
    ],
)
def test_environment_references(ref: str, expected: tuple[object, ...]) -> None:
    env = parse_job(f"command: x\nenvironment: {ref}\n").environment
    assert (env.kind, env.name, env.version, env.label) == expected


def test_inline_environment() -> None:
    spec = parse_job(
        "command: x\nenvironment:\n  image: python:3.11-slim\n  conda_file: conda.yml\n"
    )
    assert spec.environment.kind == "inline" and spec.environment.image == "python:3.11-slim"
    with pytest.raises(InvalidParameterValue, match="image' and/or 'conda_file'"):
        parse_job("command: x\nenvironment:\n  name: e\n")


def test_output_destination_and_asset_are_read() -> None:
    spec = parse_job(
        "command: x\noutputs:\n  o:\n    type: uri_folder\n    mode: upload\n"
        "    path: azureml://datastores/blob/paths/out/${{name}}/\n    name: feats\n"
        "    version: 3\n"
    )
    out = spec.outputs["o"]
    assert (out.mode, out.name, out.version) == ("upload", "feats", "3")
    assert out.path == "azureml://datastores/blob/paths/out/${{name}}/"
