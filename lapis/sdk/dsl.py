"""Pipelines written in Python, as azure-ai-ml's ``@dsl.pipeline`` writes them.

    from lapis.ml import Input, dsl, load_component

    train = load_component(source="train.yml")

    @dsl.pipeline(default_compute="local")
    def train_and_score(data, epochs=20):
        train_step = train(training_data=data, max_epochs=epochs)
        return {"model": train_step.outputs.model_output}

    job = train_and_score(Input(type="uri_folder", path="./data"))
    job.settings.force_rerun = True
    ml_client.jobs.create_or_update(job)

Calling the decorated function runs its body once, with each parameter standing for the
pipeline input of that name: calling a component (from ``load_component``, from
``client.components.get``, or a ``command(...)`` job) inside it adds a step whose inputs
are what it was given — a pipeline input, another step's ``.outputs.<name>``, an
``Input``, a literal. The steps are named after the variables that hold them (Azure's
rule), else after their component. What the function returns (a mapping of names to step
outputs) becomes the pipeline's outputs.

The result is a ``PipelineJob`` whose ``_to_dict`` is exactly the pipeline YAML a user
could have written; it is submitted as that text, so the server checks it with the same
code and messages as a file (lapis/specs/pipeline.py).
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from lapis.errors import InvalidParameterValue

_BUILDING: list[_Builder] = []  # the pipeline functions being run, innermost last


@dataclass
class PipelineInput:
    """A pipeline parameter inside the function body: ``${{parent.inputs.<name>}}``."""

    name: str

    def _binding(self) -> str:
        return f"${{{{parent.inputs.{self.name}}}}}"


@dataclass
class NodeOutput:
    """``step.outputs.<name>``: wires into another step's input, or is returned as a
    pipeline output. ``mode``/``path``/``name``/``version`` are the output's settings."""

    node: PipelineNode
    port: str
    type: str = "uri_folder"
    mode: str | None = None
    path: str | None = None
    name: str | None = None
    version: str | None = None

    def _binding(self) -> str:
        return f"${{{{parent.jobs.{self.node.name}.outputs.{self.port}}}}}"

    def _settings(self) -> dict[str, Any]:
        keys = ("mode", "path", "name", "version")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


class _Ports:
    """``outputs.<name>`` and ``outputs["<name>"]``: one of the declared ones, or an error
    naming them."""

    def __init__(self, owner: str, ports: dict[str, Any]) -> None:
        self.__dict__["_owner"] = owner
        self.__dict__["_ports"] = ports

    def __getattr__(self, name: str) -> Any:
        ports = self.__dict__["_ports"]
        if name not in ports:
            known = ", ".join(ports) or "none"
            raise AttributeError(f"{self.__dict__['_owner']} has no output '{name}' ({known})")
        return ports[name]

    def __getitem__(self, name: str) -> Any:
        return self.__getattr__(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dict__["_ports"])

    def __len__(self) -> int:
        return len(self.__dict__["_ports"])

    def keys(self) -> list[str]:
        return list(self.__dict__["_ports"])

    def items(self) -> list[tuple[str, Any]]:
        return list(self.__dict__["_ports"].items())


class PipelineNode:
    """One step: a component called with its inputs. ``compute``,
    ``environment_variables``, ``display_name`` and ``is_deterministic`` may be set on it
    before the pipeline is submitted."""

    def __init__(
        self,
        component: str,
        ref: str | dict[str, Any],
        inputs: dict[str, Any],
        outputs: dict[str, str],
    ) -> None:
        self.component = component  # its name: the step's name when no variable holds it
        self._ref = ref  # "file:/abs.yml", "azureml:name:version", or an inline document
        self.inputs = inputs
        self.name = ""  # given when the pipeline function returns
        self.compute: str | None = None
        self.display_name: str | None = None
        self.is_deterministic: bool | None = None
        self.environment_variables: dict[str, str] = {}
        self.outputs = _Ports(component, {o: NodeOutput(self, o, t) for o, t in outputs.items()})

    def __repr__(self) -> str:
        return f"PipelineNode(name={self.name!r}, component={self.component!r})"

    def _to_step(self, base_dir: Path, bound: dict[str, str]) -> dict[str, Any]:
        from lapis.sdk.entities import _input_value

        step: dict[str, Any] = {}
        if isinstance(self._ref, dict):
            step.update(self._ref)
            step.pop("inputs", None)
            step.pop("outputs", None)
        else:
            step["component"] = self._ref
        if self.display_name:
            step["display_name"] = self.display_name
        if self.compute:
            step["compute"] = self.compute
        if self.is_deterministic is not None:
            step["is_deterministic"] = self.is_deterministic
        if self.environment_variables:
            step["environment_variables"] = {
                str(k): str(v) for k, v in self.environment_variables.items()
            }
        inputs: dict[str, Any] = {}
        for name, value in self.inputs.items():
            if isinstance(value, PipelineInput | NodeOutput):
                inputs[name] = value._binding()
            elif isinstance(value, PipelineJob):
                raise InvalidParameterValue(
                    f"step {self.name}: input {name}: a pipeline inside a pipeline (a pipeline "
                    "component) is not supported yet; call its components in this one"
                )
            else:
                inputs[name] = _input_value(value, base_dir)
        if inputs:
            step["inputs"] = inputs
        outputs: dict[str, Any] = {}
        for port, out in self.outputs.items():
            if port in bound:
                outputs[port] = f"${{{{parent.outputs.{bound[port]}}}}}"
            elif out._settings() or isinstance(self._ref, dict):
                outputs[port] = {"type": out.type, **out._settings()}
        if outputs:
            step["outputs"] = outputs
        return step


def _node_from_component(component: Any, inputs: dict[str, Any]) -> PipelineNode:
    """A ``CommandComponent`` (from a file, or as the server has it) called as a step."""
    known = component.inputs
    for name in inputs:
        if name not in known:
            raise InvalidParameterValue(
                f"component {component.name} has no input '{name}' "
                f"(its inputs: {', '.join(known) or 'none'})"
            )
    if component._source is not None:
        ref = f"file:{Path(component._source).resolve()}"
    elif component.version is not None:
        ref = f"azureml:{component.name}:{component.version}"
    else:
        raise InvalidParameterValue(
            f"component {component.name}: load it from its file or get it from the workspace"
        )
    outputs = {k: str(v.get("type", "uri_folder")) for k, v in component.outputs.items()}
    return _added(PipelineNode(component.name, ref, dict(inputs), outputs))


def _node_from_command(job: Any, inputs: dict[str, Any]) -> PipelineNode:
    """A ``command(...)`` job called as a step: an inline step of the same command."""
    doc = job.to_dict(Path.cwd())
    for key in ("type", "name", "experiment_name", "compute", "display_name", "tags",
                "description", "limits"):  # fmt: skip
        doc.pop(key, None)
    given = {**job.inputs, **inputs}
    outputs = {k: (v.type if v is not None else "uri_folder") for k, v in job.outputs.items()}
    node = PipelineNode(job.display_name or "command", doc, given, outputs)
    for port, out in job.outputs.items():
        if out is not None:
            settings = out._to_dict()
            for key in ("mode", "path", "name", "version"):
                setattr(node.outputs[port], key, settings.get(key))
    node.compute = job.compute
    return _added(node)


def _added(node: PipelineNode) -> PipelineNode:
    if not _BUILDING:
        raise InvalidParameterValue(
            f"component {node.component} was called outside a @pipeline function: a step "
            "belongs to a pipeline (submit a single command with command(...))"
        )
    _BUILDING[-1].nodes.append(node)
    return node


@dataclass
class PipelineJobSettings:
    """``settings:`` of a pipeline job."""

    default_compute: str | None = None
    default_datastore: str | None = None
    default_environment: str | None = None
    continue_on_step_failure: bool | None = None
    force_rerun: bool | None = None

    def _to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class PipelineOutput:
    """A pipeline output: the settings of the step output it stands for."""

    type: str = "uri_folder"
    mode: str | None = None
    path: str | None = None
    name: str | None = None
    version: str | None = None

    def _to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None and k != "type"}


@dataclass
class PipelineJob:
    """What calling a ``@pipeline`` function gives: submit it with
    ``client.jobs.create_or_update``. ``jobs`` are its steps by name."""

    jobs: dict[str, PipelineNode]
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: Any = None  # _Ports of PipelineOutput
    settings: PipelineJobSettings = field(default_factory=PipelineJobSettings)
    name: str | None = None
    display_name: str | None = None
    description: str | None = None
    experiment_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    type: str = "pipeline"
    _bound: dict[tuple[int, str], str] = field(default_factory=dict, repr=False)
    _base_dir: Path = field(default_factory=Path.cwd, repr=False)

    @property
    def compute(self) -> str | None:
        return self.settings.default_compute

    @compute.setter
    def compute(self, value: str | None) -> None:
        self.settings.default_compute = value

    def _to_dict(self) -> dict[str, Any]:
        """The pipeline YAML document."""
        from lapis.sdk.entities import _input_value

        doc: dict[str, Any] = {"type": "pipeline"}
        for key in ("name", "display_name", "description", "experiment_name"):
            if getattr(self, key):
                doc[key] = getattr(self, key)
        if self.tags:
            doc["tags"] = {str(k): str(v) for k, v in self.tags.items()}
        if self.settings._to_dict():
            doc["settings"] = self.settings._to_dict()
        if self.inputs:
            doc["inputs"] = {k: _input_value(v, self._base_dir) for k, v in self.inputs.items()}
        if self.outputs is not None and len(self.outputs):
            doc["outputs"] = {k: o._to_dict() for k, o in self.outputs.items()}
        doc["jobs"] = {}
        for name, node in self.jobs.items():
            bound = {port: out for (nid, port), out in self._bound.items() if nid == id(node)}
            doc["jobs"][name] = node._to_step(self._base_dir, bound)
        return doc


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[PipelineNode] = []


def _run_capturing_locals(
    func: Callable[..., Any], args: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """Call ``func`` and keep its local variables as they were when it returned: the
    steps are named after them, as azure-ai-ml names them."""
    seen: dict[str, Any] = {}
    code = getattr(func, "__code__", None)
    previous = sys.getprofile()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "return" and frame.f_code is code:
            seen.update(frame.f_locals)

    sys.setprofile(profile)
    try:
        result = func(**args)
    finally:
        sys.setprofile(previous)
    return result, seen


def _name_steps(nodes: list[PipelineNode], names: dict[str, Any]) -> dict[str, PipelineNode]:
    by_var = {id(v): k for k, v in names.items() if isinstance(v, PipelineNode)}
    taken: dict[str, PipelineNode] = {}
    for node in nodes:  # variables first: a later unnamed node never takes a variable's name
        var = by_var.get(id(node))
        if var is not None and var not in taken:
            node.name, taken[var] = var, node
    for node in nodes:
        if not node.name:
            base, n = node.component, 1
            candidate = base
            while candidate in taken:
                candidate = f"{base}_{n}"
                n += 1
            node.name, taken[candidate] = candidate, node
    return {n.name: n for n in nodes}


def pipeline(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    display_name: str | None = None,
    description: str | None = None,
    experiment_name: str | None = None,
    tags: dict[str, str] | None = None,
    compute: str | None = None,
    default_compute: str | None = None,
    default_datastore: str | None = None,
    continue_on_step_failure: bool | None = None,
    force_rerun: bool | None = None,
    **_ignored: Any,
) -> Any:
    """``@pipeline`` or ``@pipeline(...)``: the function builds a pipeline each call."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., PipelineJob]:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def build(*args: Any, **kwargs: Any) -> PipelineJob:
            try:
                given = signature.bind_partial(*args, **kwargs)
            except TypeError as exc:
                raise InvalidParameterValue(f"pipeline {fn.__name__}: {exc}") from None
            given.apply_defaults()
            values: dict[str, Any] = {}
            for param in signature.parameters:
                value = given.arguments.get(param, inspect.Parameter.empty)
                if value is inspect.Parameter.empty:
                    raise InvalidParameterValue(
                        f"pipeline {fn.__name__}: input '{param}' has no value and no default"
                    )
                if value is not None:
                    values[param] = value
            builder = _Builder()
            _BUILDING.append(builder)
            try:
                placeholders = {p: PipelineInput(p) for p in signature.parameters}
                returned, names = _run_capturing_locals(fn, placeholders)
            finally:
                _BUILDING.pop()
            steps = _name_steps(builder.nodes, names)
            job = PipelineJob(
                jobs=steps,
                inputs=values,
                name=name,
                display_name=display_name or fn.__name__,
                description=description or inspect.getdoc(fn),
                experiment_name=experiment_name,
                tags=dict(tags or {}),
                settings=PipelineJobSettings(
                    default_compute=default_compute or compute,
                    default_datastore=default_datastore,
                    continue_on_step_failure=continue_on_step_failure,
                    force_rerun=force_rerun,
                ),
            )
            outputs: dict[str, PipelineOutput] = {}
            for out_name, out in (returned or {}).items():
                if not isinstance(out, NodeOutput):
                    raise InvalidParameterValue(
                        f"pipeline {fn.__name__}: output '{out_name}' must be a step's "
                        f"output (step.outputs.<name>), not {type(out).__name__}"
                    )
                job._bound[(id(out.node), out.port)] = str(out_name)
                outputs[str(out_name)] = PipelineOutput(type=out.type, **out._settings())
            job.outputs = _Ports(f"pipeline {fn.__name__}", outputs)
            return job

        return build

    return decorate(func) if func is not None else decorate
