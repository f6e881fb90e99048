"""A pipeline step as the command job that runs it: the component's command and
environment, the step's inputs resolved from its wiring (a pipeline input's value, or
``azureml://jobs/<step job>/outputs/<o>`` for another step's output), its outputs with
their settings, and the step's own compute, resources, distribution and limits."""

from __future__ import annotations

from typing import Any

import yaml

from lapis.entities.jobs import Job
from lapis.specs.component import ComponentSpec, environment_text, from_dict


def child_name(parent: str, step: str) -> str:
    return f"{parent}-{step}"


def child_submission(parent: Job, step: str) -> dict[str, Any]:
    """The submission of a step's job: the command job its component, its wiring and
    the step's own settings make, as ``POST /api/v1/jobs`` takes one."""
    spec = parent.spec
    plan = spec["steps"][step]
    document = plan["component"]
    comp = from_dict(document["spec"])
    inputs: dict[str, Any] = {}
    for name, value in plan["inputs"].items():
        kind = comp.inputs[name].type
        if isinstance(value, dict) and "bind" in value:
            if value["bind"] == "step_output":
                made = child_name(parent.name, value["step"])
                path = f"azureml://jobs/{made}/outputs/{value['name']}"
                inputs[name] = {"type": kind, "path": path}
                continue
            value = _given(spec["inputs"].get(value["name"]))
        if kind in ("string", "integer", "number", "boolean"):
            inputs[name] = value
        else:
            inputs[name] = {"type": kind, "path": value}
    for name, item in comp.inputs.items():
        if name not in inputs and item.default is not None:
            inputs[name] = item.default
    settings = spec.get("settings") or {}
    compute = plan.get("compute") or settings.get("default_compute") or "local"
    doc: dict[str, Any] = {
        "type": "command",
        "name": child_name(parent.name, step),
        "display_name": step,
        "experiment_name": spec["experiment_name"],
        "command": comp.command,
        "environment": _environment(comp, document),
        "compute": str(compute).removeprefix("azureml:"),
        "inputs": inputs,
        "outputs": _step_outputs(spec, plan, comp),
        "environment_variables": {
            **comp.environment_variables,
            **plan["environment_variables"],
        },
        "tags": {
            "pipeline": parent.name,
            "pipeline_step": step,
            "mlflow.parentRunId": parent.run_id,
        },
    }
    resources: dict[str, Any] = {}
    if comp.instance_count > 1:
        resources["instance_count"] = comp.instance_count
    if comp.instance_type:
        resources["instance_type"] = comp.instance_type
    resources.update(plan.get("resources") or {})  # the step's own win
    if resources:
        doc["resources"] = resources
    if plan.get("distribution") or comp.distribution:
        doc["distribution"] = plan.get("distribution") or comp.distribution
    if plan.get("limits"):
        doc["limits"] = plan["limits"]
    body: dict[str, Any] = {"source": f"{spec['source']} (step {step})"}
    if comp.code:
        doc["code"] = "."
        body["snapshot"] = document.get("snapshot") or {"digest": comp.code}
    body["yaml"] = yaml.safe_dump(doc, sort_keys=False)
    if document.get("conda_file_text"):
        body["conda_file_text"] = document["conda_file_text"]
    return body


def _step_outputs(
    spec: dict[str, Any], plan: dict[str, Any], comp: ComponentSpec
) -> dict[str, dict[str, Any]]:
    """Each output as the step's job writes it: the component's type, with the step's
    own ``mode``/``path``/``name`` — or, bound to a pipeline output, that output's."""
    outputs: dict[str, dict[str, Any]] = {}
    for name, item in comp.outputs.items():
        given = plan["outputs"].get(name) or {}
        if given.get("bind") == "parent_output":
            given = (spec.get("outputs") or {}).get(given["name"]) or {}
        settings = {k: given[k] for k in ("mode", "path", "name", "version") if given.get(k)}
        outputs[name] = {"type": item.type, **settings}
    return outputs


def _given(value: Any) -> Any:
    """A pipeline input's value: its path (data) or its value (a literal)."""
    if isinstance(value, dict):
        return value.get("path", value.get("value", value.get("default")))
    return value


def _environment(comp: ComponentSpec, document: dict[str, Any]) -> Any:
    env = comp.environment
    if env.kind == "inline":
        out: dict[str, Any] = {}
        if env.image:
            out["image"] = env.image
        conda = document.get("conda_file_text") or env.conda_file
        if conda is not None:
            out["conda_file"] = conda
        return out
    return environment_text(env)
