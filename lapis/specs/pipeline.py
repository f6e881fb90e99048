"""Pipeline jobs in Azure ML CLI v2 YAML (``pipelineJob.schema.json``): read and checked.

A pipeline is a parent job whose ``jobs:`` are steps — a component (``component:
./train.yml``, ``file:…``, ``azureml:train_model:1``, ``azureml:train_model@latest``)
or an inline command — wired with ``${{parent.inputs.x}}``, ``${{parent.outputs.y}}``
and ``${{parent.jobs.<step>.outputs.<o>}}``. The order the steps run in is not written:
it is derived from that wiring (a step runs once every step it reads from has
completed), and independent steps may run side by side.

Everything is checked before anything runs, each complaint naming the file, the line
and the key: unknown keys and steps, a binding to an input, output, step or step
output that does not exist, a step reading itself, a cycle (named step by step), a
step output bound into a literal input (a ``uri_folder`` into an ``integer``), a
literal that does not fit its input's type, range or choices, a required input left
unset. Registered components are looked up through ``resolve`` (the registry, on the
server); component files are read next to the pipeline file.

Running a pipeline (child jobs, reuse, restarts, schedules) is built on this module
(issue 14); until it is, ``lapis job create`` of a pipeline says so in one line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lapis.specs.component import (
    LITERALS,
    ComponentInput,
    ComponentSpec,
    check_value,
    load_component_file,
    parse_component,
)
from lapis.specs.job import _check_keys, _mapping, _string
from lapis.specs.yaml_lines import Located, load, suggest

TOP_LEVEL_KEYS = {
    "$schema",
    "type",
    "name",
    "display_name",
    "experiment_name",
    "description",
    "tags",
    "settings",
    "inputs",
    "outputs",
    "jobs",
    "compute",
    "properties",
}
SETTINGS_KEYS = {
    "default_compute",
    "default_datastore",
    "continue_on_step_failure",
    "force_rerun",
    "default_environment",
    "on_init",
    "on_finalize",
}
STEP_KEYS = {
    "type",
    "component",
    "inputs",
    "outputs",
    "compute",
    "environment_variables",
    "resources",
    "distribution",
    "limits",
    "display_name",
    "description",
    "tags",
    "is_deterministic",
    "code",
    "environment",
    "command",
    "experiment_name",
    "properties",
}
INLINE_ONLY = {"code", "environment", "command"}
_BINDING = re.compile(r"^\s*\$\{\{\s*parent\.(.+?)\s*\}\}\s*$")
_PARTS = re.compile(
    r"^(?:(?P<io>inputs|outputs)\.(?P<name>\w+)"
    r"|jobs\.(?P<step>[\w-]+)\.outputs\.(?P<output>\w+))$"
)
_STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
DATA_TYPES = ("uri_folder", "uri_file", "mltable", "mlflow_model", "custom_model")

Resolver = Callable[[str, str | None, str | None], ComponentSpec]
FileReader = Callable[[str], ComponentSpec]  # a component file as the pipeline names it


@dataclass
class Binding:
    """Where a step's input comes from (or an output goes to)."""

    kind: str  # "parent_input" | "parent_output" | "step_output"
    name: str  # the parent's input/output name, or the step's output name
    step: str | None = None  # for step_output


@dataclass
class Step:
    name: str
    component: ComponentSpec
    component_ref: str  # as written: ./train.yml, azureml:train_model:1, or "inline"
    inputs: dict[str, Any] = field(default_factory=dict)  # literal values or Binding
    outputs: dict[str, Binding | dict[str, Any]] = field(default_factory=dict)
    compute: str | None = None
    environment_variables: dict[str, str] = field(default_factory=dict)
    is_deterministic: bool = True
    after: list[str] = field(default_factory=list)  # the steps whose outputs it reads
    # the step's own, over its component's: checked when the step's job is made
    resources: dict[str, Any] = field(default_factory=dict)
    distribution: dict[str, Any] | None = None
    limits: dict[str, Any] = field(default_factory=dict)


@dataclass
class PipelineSpec:
    name: str | None
    display_name: str | None
    experiment_name: str
    description: str | None
    tags: dict[str, str]
    settings: dict[str, Any]
    inputs: dict[str, Any]
    outputs: dict[str, dict[str, Any]]
    steps: dict[str, Step]
    order: list[str]  # a topological order: every step after the steps it reads from
    source: str = "<pipeline>"

    def levels(self) -> list[list[str]]:
        """The steps in waves: each wave only reads from earlier waves (what may run at
        once when capacity allows)."""
        done: set[str] = set()
        waves: list[list[str]] = []
        left = list(self.order)
        while left:
            wave = [s for s in left if all(a in done for a in self.steps[s].after)]
            waves.append(wave)
            done.update(wave)
            left = [s for s in left if s not in done]
        return waves


def _binding(value: Any) -> str | None:
    if isinstance(value, str):
        m = _BINDING.match(value)
        if m:
            return m.group(1)
    return None


def _component(
    doc: Located,
    step: str,
    raw: dict[str, Any],
    base_dir: Path | None,
    resolve: Resolver | None,
    read_file: FileReader | None,
    pipeline_inputs: dict[str, Any],
) -> tuple[ComponentSpec, str]:
    path = ("jobs", step)
    ref = raw.get("component")
    if ref is None:
        if "command" not in raw:
            raise doc.error(
                path, "needs 'component' (a file or azureml:name:version) or an inline 'command'"
            )
        inline = {k: raw[k] for k in ("command", "code", "environment") if k in raw}
        inline["name"] = step.lower()
        inline["inputs"] = {
            k: _inline_input(v, pipeline_inputs)
            for k, v in _mapping(doc, (*path, "inputs"), raw.get("inputs")).items()
        }
        inline["outputs"] = {
            k: {"type": (v or {}).get("type", "uri_folder")}
            if isinstance(v, dict) or v is None
            else {"type": "uri_folder"}
            for k, v in _mapping(doc, (*path, "outputs"), raw.get("outputs")).items()
        }
        import yaml

        text = yaml.safe_dump(inline, sort_keys=False)
        try:
            return parse_component(text, f"{doc.where(path)} (step {step})", base_dir), "inline"
        except Exception as exc:  # the inline step's own complaint, at the step's line
            raise doc.error(path, str(exc).split(": ", 1)[-1]) from None
    for key in INLINE_ONLY & set(raw):
        raise doc.error(
            (*path, key),
            "belongs to the component; a step with 'component' "
            "sets only inputs, outputs, compute and settings",
        )
    if not isinstance(ref, str) or not ref.strip():
        raise doc.error((*path, "component"), "must name a component file or azureml:name:version")
    ref = ref.strip()
    if ref.startswith("azureml:"):
        m = re.match(r"^azureml:(?P<name>[\w]+)(?::(?P<version>[\w.\-]+)|@(?P<label>\w+))?$", ref)
        if m is None:
            raise doc.error(
                (*path, "component"),
                f"'{ref}' is not azureml:<name>:<version> or azureml:<name>@latest",
            )
        if resolve is None:
            raise doc.error((*path, "component"), "registered components are read by the server")
        try:
            return resolve(m["name"], m["version"], m["label"]), ref
        except Exception as exc:
            raise doc.error((*path, "component"), str(exc)) from None
    file = ref.removeprefix("file:").strip()
    if read_file is not None:  # on the server: the files the client sent
        try:
            return read_file(ref), ref
        except KeyError:
            raise doc.error(
                (*path, "component"), f"the component file {file} was not sent"
            ) from None
    where = Path(file) if base_dir is None else base_dir / file
    if not where.is_file():
        raise doc.error((*path, "component"), f"no component file at {where}")
    return load_component_file(where), ref


def _inline_input(value: Any, pipeline_inputs: dict[str, Any]) -> dict[str, Any]:
    """The type an inline step's input gets from what it is given: a pipeline input it is
    bound to lends its own (``lr: 0.1`` is a number), a step output is a folder."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k in ("type", "optional", "default")}
    bound = _binding(value)
    m = _PARTS.match(bound) if bound is not None else None
    if m is not None and m["io"] == "inputs" and m["name"] in pipeline_inputs:
        given = pipeline_inputs[m["name"]]
        if isinstance(given, dict):
            return {"type": given.get("type", "uri_folder")}
        return _inline_input(given, {})
    if bound is not None or (isinstance(value, str) and "/" in value):
        return {"type": "uri_folder"}
    kind = {bool: "boolean", int: "integer", float: "number"}.get(type(value), "string")
    return {"type": kind}


def _step_inputs(
    doc: Located,
    step: str,
    raw: dict[str, Any],
    comp: ComponentSpec,
    pipeline_inputs: dict[str, Any],
) -> dict[str, Any]:
    path = ("jobs", step, "inputs")
    given = _mapping(doc, path, raw.get("inputs"))
    out: dict[str, Any] = {}
    for name, value in given.items():
        spec = comp.inputs.get(name)
        if spec is None:
            raise doc.error(
                (*path, name),
                f"is not an input of component {comp.name}{suggest(name, set(comp.inputs))}",
            )
        if isinstance(value, dict) and "path" in value:
            value = value["path"]
        elif isinstance(value, dict) and "value" in value:
            value = value["value"]
        bound = _binding(value)
        if bound is None:
            problem = check_value(spec, value)
            if problem:
                raise doc.error((*path, name), problem)
            out[name] = value
            continue
        out[name] = _parse_binding(doc, (*path, name), bound, spec, pipeline_inputs)
    for name, spec in comp.inputs.items():
        if name not in out and spec.default is None and not spec.optional:
            raise doc.error(
                path if given else ("jobs", step),
                f"component {comp.name} needs input '{name}' ({spec.type})",
            )
    return out


def _parse_binding(
    doc: Located,
    path: tuple[str, ...],
    bound: str,
    spec: ComponentInput,
    pipeline_inputs: dict[str, Any],
) -> Binding:
    m = _PARTS.match(bound)
    if m is None or m["io"] == "outputs":
        raise doc.error(
            path,
            f"'${{{{parent.{bound}}}}}' is not parent.inputs.<name> or "
            "parent.jobs.<step>.outputs.<name>",
        )
    if m["io"] == "inputs":
        if m["name"] not in pipeline_inputs:
            raise doc.error(
                path,
                f"the pipeline has no input '{m['name']}'"
                f"{suggest(m['name'], set(pipeline_inputs))}",
            )
        given = pipeline_inputs[m["name"]]
        if spec.type in LITERALS and not isinstance(given, dict):
            problem = check_value(spec, given)
            if problem:
                raise doc.error(path, f"pipeline input '{m['name']}' {problem}")
        return Binding("parent_input", m["name"])
    if spec.type in LITERALS:
        raise doc.error(path, f"a step output is data, but input {path[-1]} is a {spec.type}")
    return Binding("step_output", m["output"], m["step"])


def _step_outputs(
    doc: Located,
    step: str,
    raw: dict[str, Any],
    comp: ComponentSpec,
    pipeline_outputs: dict[str, Any],
) -> dict[str, Binding | dict[str, Any]]:
    path = ("jobs", step, "outputs")
    out: dict[str, Binding | dict[str, Any]] = {}
    for name, value in _mapping(doc, path, raw.get("outputs")).items():
        if name not in comp.outputs:
            raise doc.error(
                (*path, name),
                f"is not an output of component {comp.name}{suggest(name, set(comp.outputs))}",
            )
        bound = _binding(value)
        if bound is None:
            out[name] = dict(value) if isinstance(value, dict) else {}
            continue
        m = _PARTS.match(bound)
        if m is None or m["io"] != "outputs":
            raise doc.error((*path, name), "an output binds to ${{parent.outputs.<name>}}")
        if m["name"] not in pipeline_outputs:
            raise doc.error(
                (*path, name),
                f"the pipeline has no output '{m['name']}'"
                f"{suggest(m['name'], set(pipeline_outputs))}",
            )
        out[name] = Binding("parent_output", m["name"])
    return out


def _order(doc: Located, steps: dict[str, Step]) -> list[str]:
    """A topological order, or the cycle named step by step."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            loop = [*trail[trail.index(name) :], name]
            raise doc.error(
                ("jobs", loop[0]),
                "the steps read each other's outputs in a cycle: " + " → ".join(loop),
            )
        state[name] = 1
        for before in steps[name].after:
            visit(before, [*trail, name])
        state[name] = 2
        order.append(name)

    for name in steps:
        visit(name, [])
    return order


def parse_pipeline(
    text: str,
    source: str = "<pipeline>",
    base_dir: Path | None = None,
    resolve: Resolver | None = None,
    read_file: FileReader | None = None,
) -> PipelineSpec:
    doc = load(text, source)
    data = _mapping(doc, (), doc.data)
    kind = str(data.get("type", "")).lower()
    if kind != "pipeline":
        raise doc.error(("type",), "must be pipeline")
    _check_keys(doc, (), data, TOP_LEVEL_KEYS, "a pipeline job")
    settings = _mapping(doc, ("settings",), data.get("settings"))
    _check_keys(doc, ("settings",), settings, SETTINGS_KEYS, "settings")
    for flag in ("continue_on_step_failure", "force_rerun"):
        if flag in settings and not isinstance(settings[flag], bool):
            raise doc.error(("settings", flag), "must be true or false")
    inputs = _mapping(doc, ("inputs",), data.get("inputs"))
    outputs = {
        str(k): dict(v or {}) for k, v in _mapping(doc, ("outputs",), data.get("outputs")).items()
    }
    raw_steps = _mapping(doc, ("jobs",), data.get("jobs"))
    if not raw_steps:
        raise doc.error(("jobs",), "a pipeline needs at least one step")
    steps: dict[str, Step] = {}
    for name, raw in raw_steps.items():
        name = str(name)
        if not _STEP_NAME.match(name):
            raise doc.error(
                ("jobs", name),
                "a step name holds letters, digits and '_', starting with a letter or '_'",
            )
        raw = _mapping(doc, ("jobs", name), raw)
        _check_keys(doc, ("jobs", name), raw, STEP_KEYS, f"step '{name}'")
        if str(raw.get("type", "command")).lower() != "command":
            raise doc.error(
                ("jobs", name, "type"),
                f"{raw['type']} steps are not supported yet; supported: command",
            )
        comp, ref = _component(doc, name, raw, base_dir, resolve, read_file, inputs)
        step_inputs = _step_inputs(doc, name, raw, comp, inputs)
        deterministic = raw.get("is_deterministic", comp.is_deterministic)
        if not isinstance(deterministic, bool):
            raise doc.error(("jobs", name, "is_deterministic"), "must be true or false")
        env = _mapping(
            doc, ("jobs", name, "environment_variables"), raw.get("environment_variables")
        )
        steps[name] = Step(
            name=name,
            component=comp,
            component_ref=ref,
            inputs=step_inputs,
            outputs=_step_outputs(doc, name, raw, comp, outputs),
            compute=(
                _string(doc, ("jobs", name, "compute"), raw.get("compute")) or ""
            ).removeprefix("azureml:")
            or None,
            environment_variables={str(k): str(v) for k, v in env.items()},
            is_deterministic=deterministic,
            resources=dict(_mapping(doc, ("jobs", name, "resources"), raw.get("resources"))),
            distribution=(
                dict(_mapping(doc, ("jobs", name, "distribution"), raw["distribution"]))
                if raw.get("distribution") is not None
                else None
            ),
            limits=dict(_mapping(doc, ("jobs", name, "limits"), raw.get("limits"))),
            after=sorted(
                {b.step for b in step_inputs.values() if isinstance(b, Binding) and b.step}
            ),
        )
    for name, step in steps.items():
        for input_name, b in step.inputs.items():
            if not isinstance(b, Binding) or b.step is None:
                continue
            where = ("jobs", name, "inputs", input_name)
            if b.step == name:
                raise doc.error(where, "a step cannot read its own output")
            if b.step not in steps:
                raise doc.error(where, f"there is no step '{b.step}'{suggest(b.step, set(steps))}")
            made = steps[b.step].component.outputs
            if b.name not in made:
                raise doc.error(
                    where, f"step {b.step} has no output '{b.name}'{suggest(b.name, set(made))}"
                )
    tags = _mapping(doc, ("tags",), data.get("tags"))
    return PipelineSpec(
        name=_string(doc, ("name",), data.get("name")),
        display_name=_string(doc, ("display_name",), data.get("display_name")),
        experiment_name=_string(doc, ("experiment_name",), data.get("experiment_name"))
        or "Default",
        description=_string(doc, ("description",), data.get("description")),
        tags={str(k): str(v) for k, v in tags.items()},
        settings=settings,
        inputs=inputs,
        outputs=outputs,
        steps=steps,
        order=_order(doc, steps),
        source=source,
    )


_TOP_TYPE = re.compile(r"""^type:[ \t]*["']?(\w+)["']?[ \t]*(?:#.*)?$""", re.MULTILINE)
_TOP_SCHEMA = re.compile(r"^\$schema:.*pipelinejob\.schema\.json", re.MULTILINE | re.IGNORECASE)


def is_pipeline(text: object) -> bool:
    """Whether a job file's text is a pipeline (a top-level ``type: pipeline``, or a
    pipelineJob ``$schema`` and no ``type``), by its top-level lines alone: the file is
    not parsed here (the parser that takes it guards against alias bombs and the like)."""
    if not isinstance(text, str):
        return False
    kind = _TOP_TYPE.search(text)
    if kind is not None:
        return kind.group(1).lower() == "pipeline"
    return _TOP_SCHEMA.search(text) is not None


def load_pipeline_file(path: Path, resolve: Resolver | None = None) -> PipelineSpec:
    from lapis.specs.yaml_lines import read_text_file

    return parse_pipeline(read_text_file(path, "pipeline file"), str(path), path.parent, resolve)
