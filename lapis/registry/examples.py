"""An example scoring request for a model version, for the studio's test form.

In order: a request file stored with the model (``sample-request.json``,
MLflow's ``serving_input_example.json``/``input_example.json``), else one
built from an MLflow model's signature — the columns it declares, each with a
value of its type — in the ``input_data`` shape Azure's MLflow deployments
take, so the form's prefilled body is one the deployed model accepts.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from lapis.errors import LapisError
from lapis.registry.models import ModelService

SAMPLE_FILES = (
    "sample-request.json",
    "sample_request.json",
    "serving_input_example.json",
    "input_example.json",
)
MAX_BYTES = 64 * 1024
_VALUES: dict[str, Any] = {
    "double": 0.0,
    "float": 0.0,
    "long": 0,
    "integer": 0,
    "boolean": False,
    "string": "text",
    "binary": "",
    "datetime": "2024-01-01T00:00:00",
}


def example_request(models: ModelService, name: str, version: object) -> str | None:
    """A JSON request body (indented text) for the version, or None when none can be made."""
    try:
        listing = models.files(name, version)
    except LapisError:
        return None

    def read(path: str) -> bytes:
        rel = f"{listing.root}/{path}" if listing.root else path
        return b"".join(models.artifacts.iter_read(rel))

    for f in listing.files:
        if f.path.rsplit("/", 1)[-1] in SAMPLE_FILES and (f.size or 0) <= MAX_BYTES:
            try:
                return json.dumps(json.loads(read(f.path)), indent=2)
            except ValueError:
                continue
    mlmodels = sorted(
        (f for f in listing.files if f.path.rsplit("/", 1)[-1] == "MLmodel"),
        key=lambda f: f.path.count("/"),
    )
    if not mlmodels or (mlmodels[0].size or 0) > MAX_BYTES:
        return None
    body = from_signature(read(mlmodels[0].path).decode("utf-8", "replace"))
    return None if body is None else json.dumps(body, indent=2)


def from_signature(mlmodel_text: str) -> dict[str, Any] | None:
    """A request in Azure's ``input_data`` shape from an ``MLmodel`` file's signature."""
    try:
        doc = yaml.safe_load(mlmodel_text)
        inputs = json.loads(doc["signature"]["inputs"])
    except (yaml.YAMLError, KeyError, TypeError, ValueError):
        return None
    if not isinstance(inputs, list) or not inputs:
        return None
    if all(isinstance(c, dict) and c.get("type") == "tensor" for c in inputs):
        spec = inputs[0].get("tensor-spec") or {}
        shape = [abs(int(n)) or 1 for n in spec.get("shape") or [-1]]
        value = 0 if str(spec.get("dtype", "")).startswith(("int", "uint")) else 0.0
        row: Any = value
        for n in reversed(shape[1:]):
            row = [row] * n
        return {"input_data": [row]}
    columns = [c for c in inputs if isinstance(c, dict)]
    names = [str(c.get("name", f"col{i}")) for i, c in enumerate(columns)]
    row = [_VALUES.get(str(c.get("type")), 0.0) for c in columns]
    return {"input_data": {"columns": names, "index": [0], "data": [row]}}
