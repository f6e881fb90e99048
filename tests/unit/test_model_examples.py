"""Example requests built from an MLflow model's signature (the studio's test form)."""

from __future__ import annotations

import json

from lapis.registry.examples import from_signature


def _mlmodel(inputs: list[dict[str, object]]) -> str:
    return "flavors: {}\nsignature:\n  inputs: '" + json.dumps(inputs) + "'\n"


def test_columns_get_a_value_of_their_type() -> None:
    body = from_signature(
        _mlmodel(
            [
                {"name": "rooms", "type": "double"},
                {"name": "age", "type": "long"},
                {"name": "city", "type": "string"},
                {"name": "new", "type": "boolean"},
            ]
        )
    )
    assert body == {
        "input_data": {
            "columns": ["rooms", "age", "city", "new"],
            "index": [0],
            "data": [[0.0, 0, "text", False]],
        }
    }


def test_a_tensor_signature_gives_one_row_of_its_shape() -> None:
    spec = {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2, 3]}}
    assert from_signature(_mlmodel([spec])) == {"input_data": [[[0.0] * 3] * 2]}
    ints = {"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1, 4]}}
    assert from_signature(_mlmodel([ints])) == {"input_data": [[0, 0, 0, 0]]}


def test_no_or_broken_signature_gives_nothing() -> None:
    assert from_signature("flavors: {}\n") is None
    assert from_signature("signature:\n  inputs: 'not json'\n") is None
    assert from_signature(": : :") is None
