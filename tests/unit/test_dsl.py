"""@pipeline builds the pipeline YAML a user could have written: steps named after the
variables holding them (else their component, numbered), bindings for pipeline inputs,
step outputs and returned outputs, and one clear error for each misuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from lapis.errors import InvalidParameterValue
from lapis.ml import Input, Output, command, dsl, load_component
from lapis.specs.pipeline import Binding, parse_pipeline

FILES = Path(__file__).parents[1] / "compat" / "files"
train = load_component(source=FILES / "components" / "train.yml")
score = load_component(source=FILES / "pipelines" / "score.yml")


def test_steps_bindings_and_outputs_make_the_pipeline_document() -> None:
    @dsl.pipeline(default_compute="local", force_rerun=True)
    def two(data: Input, epochs: int = 5) -> dict[str, object]:
        fit = train(training_data=data, max_epochs=epochs)
        score(model_input=fit.outputs.model_output, test_data=data)  # no variable
        score(model_input=fit.outputs["model_output"], test_data=data)
        echo = command(command="echo ${{inputs.m}}", environment="system",
                       outputs={"o": Output(type="uri_folder", mode="upload")})  # fmt: skip
        echo(m=fit.outputs.model_output)
        return {"model": fit.outputs.model_output}

    job = two(Input(type="uri_folder", path="/data"))
    job.outputs.model.mode = "upload"
    assert list(job.jobs) == ["fit", "score_model", "score_model_1", "command"]
    doc = job._to_dict()
    assert doc["settings"] == {"default_compute": "local", "force_rerun": True}
    assert doc["inputs"] == {"data": {"type": "uri_folder", "path": "/data"}, "epochs": 5}
    assert doc["outputs"] == {"model": {"mode": "upload"}}
    fit = doc["jobs"]["fit"]
    assert fit["component"] == f"file:{(FILES / 'components' / 'train.yml').resolve()}"
    assert fit["inputs"] == {"training_data": "${{parent.inputs.data}}",
                             "max_epochs": "${{parent.inputs.epochs}}"}  # fmt: skip
    assert fit["outputs"] == {"model_output": "${{parent.outputs.model}}"}
    assert doc["jobs"]["score_model"]["inputs"]["model_input"] == (
        "${{parent.jobs.fit.outputs.model_output}}"
    )
    inline = doc["jobs"]["command"]
    assert inline["command"] == "echo ${{inputs.m}}" and inline["environment"] == "system"
    assert inline["outputs"] == {"o": {"type": "uri_folder", "mode": "upload"}}
    # the server's parser reads it as a DAG: the document is a valid pipeline file
    import yaml

    plan = parse_pipeline(yaml.safe_dump(doc), "<sdk>", None)
    assert plan.steps["score_model_1"].inputs["model_input"] == Binding(
        "step_output", "model_output", "fit"
    )
    assert plan.levels() == [["fit"], ["command", "score_model", "score_model_1"]]


def test_misuse_is_one_clear_error() -> None:
    with pytest.raises(InvalidParameterValue, match=r"has no input 'epochs'.*max_epochs"):

        @dsl.pipeline
        def wrong_input(data: Input) -> None:
            train(training_data=data, epochs=3)

        wrong_input(Input(path="/d"))
    with pytest.raises(InvalidParameterValue, match="outside a @pipeline function"):
        train(training_data=Input(path="/d"))

    @dsl.pipeline()
    def needs(data: Input) -> None:
        train(training_data=data)

    with pytest.raises(InvalidParameterValue, match="input 'data' has no value"):
        needs()

    @dsl.pipeline()
    def returns_text(data: Input) -> dict[str, str]:
        train(training_data=data)
        return {"model": "not an output"}

    with pytest.raises(InvalidParameterValue, match="output 'model' must be a step's output"):
        returns_text(Input(path="/d"))

    @dsl.pipeline()
    def typo(data: Input) -> dict[str, object]:
        fit = train(training_data=data)
        return {"m": fit.outputs.model}

    with pytest.raises(AttributeError, match="train_model has no output 'model'"):
        typo(Input(path="/d"))
