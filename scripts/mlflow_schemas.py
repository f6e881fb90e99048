"""Write the MLflow routes' request and response schemas from MLflow's own protocol files.

    .venv/bin/python scripts/mlflow_schemas.py   # needs the dev extra (mlflow)

Lapis serves MLflow's REST protocol without importing mlflow at run time, so the
JSON schemas it publishes in /openapi.json for those routes are generated here,
once, from the protobuf descriptors the mlflow package ships (each RPC names its
HTTP method and path, each field its type and whether the server requires it),
and committed as ``lapis/server/routers/mlflow/schemas.json``. Run it again after
moving to a newer mlflow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import FieldDescriptor as F

TARGET = Path(__file__).resolve().parents[1] / "lapis/server/routers/mlflow/schemas.json"
INT64 = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}


def _scalar(field: Any, response: bool) -> dict[str, Any]:
    t = field.type
    if t in (F.TYPE_STRING, F.TYPE_BYTES):
        return {"type": "string"}
    if t in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        # responses spell NaN and infinities as strings, as MLflow's server does
        return {"type": ["number", "string"]} if response else {"type": "number"}
    if t == F.TYPE_BOOL:
        return {"type": "boolean"}
    if t == F.TYPE_ENUM:
        names = [v.name for v in field.enum_type.values]
        return (
            {"type": "string", "enum": names} if not response else {"type": ["string", "integer"]}
        )
    if response:  # proto3's JSON mapping may quote 64-bit integers
        return {"type": ["integer", "string"]}
    return dict(INT64)


def _message(desc: Any, response: bool, depth: int = 0) -> dict[str, Any]:
    from mlflow.protos import databricks_pb2

    props: dict[str, Any] = {}
    required: list[str] = []
    for field in desc.fields:
        if field.type == F.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                value = field.message_type.fields_by_name["value"]
                inner = _scalar(value, response) if value.type != F.TYPE_MESSAGE else {}
                schema: dict[str, Any] = {"type": "object", "additionalProperties": inner}
            elif depth >= 4:
                schema = {"type": "object"}
            else:
                schema = _message(field.message_type, response, depth + 1)
        else:
            schema = _scalar(field, response)
        if field.is_repeated and not (
            field.type == F.TYPE_MESSAGE and field.message_type.GetOptions().map_entry
        ):
            schema = {"type": "array", "items": schema}
        props[field.name] = schema
        if not response and field.GetOptions().Extensions[databricks_pb2.validate_required]:
            required.append(field.name)
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


def _query(desc: Any) -> list[dict[str, Any]]:
    from mlflow.protos import databricks_pb2

    params = []
    for field in desc.fields:
        if field.type == F.TYPE_MESSAGE:
            continue
        schema = _scalar(field, False)
        if field.is_repeated:
            schema = {"type": "array", "items": schema}
        params.append(
            {
                "name": field.name,
                "in": "query",
                "required": bool(field.GetOptions().Extensions[databricks_pb2.validate_required]),
                "schema": schema,
            }
        )
    return params


def main() -> None:
    from mlflow.protos import databricks_pb2, model_registry_pb2, service_pb2

    from lapis.server.routers.mlflow import experiments, logged_models, registry, runs

    served = {
        (m, p) for mod in (runs, experiments, logged_models, registry) for m, p, _ in mod.ROUTES
    }
    out: dict[str, Any] = {}
    for service in (service_pb2.MlflowService, model_registry_pb2.ModelRegistryService):
        for method in service.DESCRIPTOR.methods:
            rpc = method.GetOptions().Extensions[databricks_pb2.rpc]
            request = method.input_type
            response = request.nested_types_by_name.get("Response") or method.output_type
            for endpoint in rpc.endpoints:
                path = endpoint.path.removeprefix("/mlflow")
                if (endpoint.method, path) not in served:
                    continue
                entry: dict[str, Any] = {"response": _message(response, True)}
                if endpoint.method == "GET":
                    entry["query"] = _query(request)
                else:
                    entry["body"] = _message(request, False)
                out[f"{endpoint.method} {path}"] = entry
    TARGET.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"{len(out)} routes written to {TARGET}")


if __name__ == "__main__":
    main()
