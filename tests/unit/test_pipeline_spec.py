"""Pipeline jobs as Azure writes them: steps from component files, registered components
and inline commands, wired by ${{parent...}} bindings into a DAG; every mistake one line
with the file, the line and the key — before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from lapis.errors import InvalidParameterValue, ResourceDoesNotExist
from lapis.specs.component import load_component_file
from lapis.specs.pipeline import Binding, load_pipeline_file, parse_pipeline

FILES = Path(__file__).parents[1] / "compat" / "files"
PIPELINES = FILES / "pipelines"


def test_a_three_step_pipeline_with_a_side_branch_becomes_a_dag() -> None:
    spec = load_pipeline_file(PIPELINES / "train-score-eval.yml")
    assert spec.display_name == "train, score, evaluate"
    assert spec.experiment_name == "pipeline-compat"
    assert spec.settings == {"default_compute": "azureml:local", "continue_on_step_failure": False}
    train = spec.steps["train_job"]
    assert train.component.name == "train_model" and train.component_ref.endswith("train.yml")
    assert train.inputs["training_data"] == Binding("parent_input", "pipeline_job_training_input")
    assert train.inputs["learning_rate"] == 0.05
    assert train.outputs["model_output"] == Binding("parent_output", "pipeline_job_trained_model")
    score = spec.steps["score_job"]
    assert score.inputs["model_input"] == Binding("step_output", "model_output", "train_job")
    assert score.after == ["train_job"]
    assert spec.steps["evaluate_job"].component_ref == "inline"
    assert spec.steps["evaluate_job"].after == ["score_job"]
    assert spec.order.index("train_job") < spec.order.index("score_job")
    assert spec.order.index("score_job") < spec.order.index("evaluate_job")
    # report_job only needs train_job: it runs beside score_job
    assert spec.levels() == [["train_job"], ["score_job", "report_job"], ["evaluate_job"]]


def test_registered_components_are_resolved_by_the_caller() -> None:
    seen = []

    def resolve(name: str, version: str | None, label: str | None) -> object:
        seen.append((name, version, label))
        if name != "train_model":
            raise ResourceDoesNotExist(f"Component '{name}' not found")
        return load_component_file(FILES / "components" / "train.yml")

    text = (PIPELINES / "train-score-eval.yml").read_text()
    text = text.replace(
        "component: ../components/train.yml", "component: azureml:train_model@latest"
    )
    spec = parse_pipeline(text, "p.yml", PIPELINES, resolve)  # type: ignore[arg-type]
    assert seen == [("train_model", None, "latest")]
    assert spec.steps["train_job"].component_ref == "azureml:train_model@latest"
    missing = text.replace("azureml:train_model@latest", "azureml:nope:3")
    with pytest.raises(InvalidParameterValue, match=r"p.yml:20: 'jobs.train_job.component' .*nope"):
        parse_pipeline(missing, "p.yml", PIPELINES, resolve)  # type: ignore[arg-type]


STEP = "jobs:\n  a:\n    command: echo ${{inputs.x}}\n    inputs:\n      x: 1\n"


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("type: pipeline\n", ":1", "at least one step"),
        ("type: pipeline\nsetings: {}\n" + STEP, ":2", "did you mean 'settings'"),
        ("type: pipeline\nsettings:\n  force_rerun: sometimes\n" + STEP, ":3", "true or false"),
        ("type: pipeline\njobs:\n  a:\n    type: sweep\n", ":4", "sweep steps are not supported"),
        ("type: pipeline\njobs:\n  a:\n    inputs: {}\n", ":3", "needs 'component'"),
        (
            "type: pipeline\njobs:\n  a:\n    command: echo ${{inputs.x}}\n    inputs:\n"
            "      x: ${{parent.inputs.nope}}\n",
            ":6",
            "the pipeline has no input 'nope'",
        ),
        (
            "type: pipeline\njobs:\n  a:\n    command: echo ${{inputs.x}}\n    inputs:\n"
            "      x: ${{parent.jobs.b.outputs.o}}\n",
            ":6",
            "there is no step 'b'",
        ),
        (
            "type: pipeline\njobs:\n  a:\n    command: echo ${{inputs.x}} ${{outputs.o}}\n"
            "    inputs:\n      x: ${{parent.jobs.a.outputs.o}}\n    outputs:\n      o: {}\n",
            ":6",
            "cannot read its own output",
        ),
        (
            "type: pipeline\njobs:\n"
            "  a:\n    command: echo ${{inputs.x}} ${{outputs.o}}\n"
            "    inputs:\n      x: ${{parent.jobs.b.outputs.o}}\n    outputs:\n      o: {}\n"
            "  b:\n    command: echo ${{inputs.x}} ${{outputs.o}}\n"
            "    inputs:\n      x: ${{parent.jobs.a.outputs.o}}\n    outputs:\n      o: {}\n",
            ":3",
            "cycle: a → b → a",
        ),
        (
            "type: pipeline\njobs:\n  a:\n    command: echo ${{inputs.x}}\n    inputs:\n"
            "      x: ${{parent.jobs.b.outputs.nope}}\n  b:\n    command: echo ${{outputs.o}}\n"
            "    outputs:\n      o: {}\n",
            ":6",
            "step b has no output 'nope'",
        ),
        (
            "type: pipeline\njobs:\n  a:\n    component: ../components/train.yml\n"
            "    inputs:\n      training_data: ./d\n      max_epochs: 0\n",
            ":7",
            "must be at least 1",
        ),
        (
            "type: pipeline\njobs:\n  a:\n    component: ../components/train.yml\n"
            "    inputs:\n      training_data: ./d\n      max_epoch: 5\n",
            ":7",
            "did you mean 'max_epochs'",
        ),
        (
            "type: pipeline\njobs:\n  a:\n    component: ../components/train.yml\n",
            ":3",
            "needs input 'training_data'",
        ),
        (
            "type: pipeline\njobs:\n  a:\n    component: ../components/train.yml\n"
            "    command: echo\n",
            ":5",
            "belongs to the component",
        ),
        (
            "type: pipeline\njobs:\n  a:\n    component: ../components/train.yml\n"
            "    inputs:\n      training_data: ./d\n"
            "      max_epochs: ${{parent.jobs.b.outputs.o}}\n"
            "  b:\n    command: echo ${{outputs.o}}\n    outputs:\n      o: {}\n",
            ":7",
            "a step output is data, but input max_epochs is a integer",
        ),
        (
            "type: pipeline\njobs:\n  a:\n    component: ./missing.yml\n",
            ":4",
            "no component file",
        ),
    ],
)
def test_mistakes_are_one_line_with_file_and_line(text: str, where: str, says: str) -> None:
    with pytest.raises(InvalidParameterValue) as caught:
        parse_pipeline(text, "p.yml", PIPELINES)
    message = str(caught.value)
    assert message.startswith(f"p.yml{where}"), message
    assert says in message, message


def test_a_pipeline_is_told_by_its_top_level_lines_without_parsing_the_file() -> None:
    from lapis.specs.pipeline import is_pipeline

    assert is_pipeline("type: pipeline\njobs: {}\n")
    assert is_pipeline("type: 'Pipeline'  # Azure's\n")
    assert is_pipeline(
        "$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json\n"
    )
    assert not is_pipeline("type: command\ncommand: echo\n")
    assert not is_pipeline("command: echo\njobs:\n  a:\n    type: pipeline\n")  # not top level
    bomb = "\n".join(
        ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
        + [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    )
    assert not is_pipeline(bomb + "\ncommand: echo\n")  # read as lines, never expanded
    assert not is_pipeline(None)


def test_an_inline_step_input_takes_the_type_of_the_pipeline_input_it_is_bound_to() -> None:
    text = """\
type: pipeline
inputs:
  lr: 0.1
  epochs: {type: integer, default: 3}
  name: run
  rows: {type: uri_file, path: azureml://datastores/workspaceblobstore/paths/r.csv}
jobs:
  a:
    command: echo ${{inputs.lr}} ${{inputs.epochs}} ${{inputs.name}} ${{inputs.rows}}
    inputs:
      lr: ${{parent.inputs.lr}}
      epochs: ${{parent.inputs.epochs}}
      name: ${{parent.inputs.name}}
      rows: ${{parent.inputs.rows}}
"""
    spec = parse_pipeline(text, "p.yml", None)
    types = {k: v.type for k, v in spec.steps["a"].component.inputs.items()}
    assert types == {"lr": "number", "epochs": "integer", "name": "string", "rows": "uri_file"}
