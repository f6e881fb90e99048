"""Command components as Azure writes them: every field read, every mistake one line
naming the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from lapis.errors import InvalidParameterValue
from lapis.specs.component import check_value, from_dict, load_component_file, parse_component

FILES = Path(__file__).parents[1] / "compat" / "files" / "components"


def test_an_azure_shaped_component_file_loads_whole() -> None:
    spec = load_component_file(FILES / "train.yml")
    assert (spec.name, spec.version, spec.display_name) == ("train_model", "1", "Train a model")
    assert spec.tags == {"team": "forecasting"} and spec.is_deterministic
    assert spec.code == str((FILES / "src").resolve())
    assert spec.environment.name == "AzureML-sklearn-1.5" and spec.environment.label == "latest"
    epochs = spec.inputs["max_epochs"]
    assert (epochs.type, epochs.default, epochs.min, epochs.max) == ("integer", 10, 1, 1000)
    assert spec.inputs["learning_rate_schedule"].enum == ["time-based", "step"]
    assert spec.inputs["warm_start"].optional
    assert spec.outputs["model_output"].type == "uri_folder"
    assert from_dict(spec.to_dict()) == spec.__class__(**{**spec.__dict__, "source": "<component>"})


BASE = "name: c\ncommand: echo ${{inputs.a}}\ninputs:\n  a:\n    type: integer\n"


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("type: pipeline\nname: p\n", ":1", "pipeline components are not supported yet"),
        ("name: Train-Model\ncommand: x\n", ":1", "lowercase letters"),
        ("name: c\n", ":1", "command"),
        ("name: c\ncommand: x\nimage: y\n", ":3", "not a valid key of a command component"),
        ("name: c\ncommand: echo ${{inputs.b}}\n", ":2", "has no input 'b'"),
        (BASE + "    default: 0\n    min: 1\n", ":6", "must be at least 1"),
        (BASE + "    default: two\n", ":6", "must be an integer"),
        (BASE + "    min: 5\n    max: 1\n", ":7", "must be at least min"),
        (BASE + "    enum: [x]\n", ":6", "for a string input"),
        (BASE + "    optional: true\n", ":2", "optional input 'a' outside $[["),
        ("name: c\ncommand: x\ninputs:\n  a:\n    type: table\n", ":5", "must be one of"),
        ("name: c\ncommand: x\nis_deterministic: maybe\n", ":3", "true or false"),
        ("name: c\ncommand: x\nversion: 1/2\n", ":3", "letters, digits"),
    ],
)
def test_mistakes_are_one_line_with_file_and_line(text: str, where: str, says: str) -> None:
    with pytest.raises(InvalidParameterValue) as caught:
        parse_component(text, "comp.yml")
    message = str(caught.value)
    assert message.startswith(f"comp.yml{where}"), message
    assert says in message, message


def test_values_are_checked_against_type_range_and_enum() -> None:
    spec = parse_component(
        "name: c\ncommand: echo ${{inputs.n}} ${{inputs.s}}\ninputs:\n"
        "  n: {type: number, min: 0, max: 1}\n  s: {type: string, enum: [a, b]}\n"
    )
    assert check_value(spec.inputs["n"], 0.5) is None
    assert "at most 1" in str(check_value(spec.inputs["n"], 2))
    assert "must be a number" in str(check_value(spec.inputs["n"], "x"))
    assert "one of a, b" in str(check_value(spec.inputs["s"], "c"))
