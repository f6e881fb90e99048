"""Command components in Azure ML CLI v2 YAML (``commandComponent.schema.json``).

A component is a command job's recipe without its values: the command with
``${{inputs.x}}`` / ``${{outputs.y}}`` placeholders, the code, the environment, and
typed inputs (with defaults, ``optional``, ``min``/``max``, ``enum``) and outputs.
Pipelines wire values into them (lapis/jobs/pipelines, issue 14); the registry keeps
them versioned (lapis/registry/components.py). The file Azure's ``az ml component
create`` takes loads here unchanged; every complaint names the file, line and key.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lapis.specs.distribution import parse_distribution
from lapis.specs.job import (
    _OPTIONAL,
    _PLACEHOLDER,
    INPUT_MODES,
    INPUT_TYPES,
    EnvironmentRef,
    JobOutput,
    _check_io_name,
    _check_keys,
    _mapping,
    _parse_output,
    _string,
    parse_code,
    parse_environment,
    parse_resources,
)
from lapis.specs.kinds import Kinds
from lapis.specs.yaml_lines import Located, load, read_text_file, suggest

COMPONENTS = Kinds(
    what="component",
    supported=("command",),
    not_yet={
        "pipeline": "pipeline components come with pipeline jobs",
        "parallel": "parallel components",
        "spark": "",
        "import": "data import components",
    },
    schemas={
        "commandcomponent": "command",
        "pipelinecomponent": "pipeline",
        "parallelcomponent": "parallel",
        "sparkcomponent": "spark",
        "importcomponent": "import",
    },
    default="command",
)
TOP_LEVEL_KEYS = {
    "$schema", "type", "name", "version", "display_name", "description", "tags",
    "is_deterministic", "code", "environment", "command", "distribution", "resources",
    "inputs", "outputs", "properties", "environment_variables",
}  # fmt: skip
INPUT_KEYS = {"type", "default", "optional", "min", "max", "enum", "description", "mode"}
LITERALS = ("string", "integer", "number", "boolean")
# Azure: lowercase letters, digits and '_', starting with a letter or '_'
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,254}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass
class ComponentInput:
    type: str
    default: Any = None
    optional: bool = False
    min: float | None = None
    max: float | None = None
    enum: list[str] | None = None
    description: str | None = None
    mode: str | None = None


@dataclass
class ComponentSpec:
    name: str
    command: str
    version: str | None = None
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    is_deterministic: bool = True
    code: str | None = None
    environment: EnvironmentRef = field(default_factory=lambda: EnvironmentRef("system"))
    inputs: dict[str, ComponentInput] = field(default_factory=dict)
    outputs: dict[str, JobOutput] = field(default_factory=dict)
    environment_variables: dict[str, str] = field(default_factory=dict)
    distribution: dict[str, Any] | None = None
    instance_count: int = 1
    instance_type: str | None = None
    source: str = "<component>"

    def to_dict(self) -> dict[str, Any]:
        """The stored form: plain data, read back by :func:`from_dict`."""
        data = asdict(self)
        data.pop("source")
        return data


def from_dict(data: dict[str, Any]) -> ComponentSpec:
    values = dict(data)
    values["environment"] = EnvironmentRef(**values.get("environment") or {"kind": "system"})
    values["inputs"] = {k: ComponentInput(**v) for k, v in (values.get("inputs") or {}).items()}
    values["outputs"] = {k: JobOutput(**v) for k, v in (values.get("outputs") or {}).items()}
    return ComponentSpec(**values)


def environment_text(env: EnvironmentRef) -> str:
    """How the environment reads in a listing: ``azureml:name:version``, ``system``, …"""
    if env.kind == "registered":
        return f"azureml:{env.name}" + (f":{env.version}" if env.version else f"@{env.label}")
    if env.kind == "inline":
        return env.image or "inline (conda file)" if not env.build else "inline (Docker build)"
    if env.kind == "file":
        return f"file:{env.name}"
    return "system"


def _number(doc: Located, path: tuple[str, ...], value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise doc.error(path, f"must be a number, got {type(value).__name__}")
    return float(value) if isinstance(value, float) else int(value)


def _literal_fits(kind: str, value: Any) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _parse_input(doc: Located, name: str, raw: Any) -> ComponentInput:
    path = ("inputs", name)
    _check_io_name(doc, path, name)
    raw = _mapping(doc, path, raw)
    _check_keys(doc, path, raw, INPUT_KEYS, f"component input '{name}'")
    kind = raw.get("type")
    if kind is None:
        raise doc.error(path, f"needs 'type': one of {', '.join(sorted(INPUT_TYPES))}")
    if kind not in INPUT_TYPES:
        raise doc.error(
            (*path, "type"),
            f"must be one of {', '.join(sorted(INPUT_TYPES))}{suggest(str(kind), INPUT_TYPES)}",
        )
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        raise doc.error((*path, "optional"), "must be true or false")
    low = _number(doc, (*path, "min"), raw.get("min"))
    high = _number(doc, (*path, "max"), raw.get("max"))
    if (low is not None or high is not None) and kind not in ("integer", "number"):
        raise doc.error((*path, "min" if low is not None else "max"),
                        f"min/max are for integer and number inputs, not {kind}")  # fmt: skip
    if low is not None and high is not None and low > high:
        raise doc.error((*path, "max"), f"must be at least min ({low})")
    enum = raw.get("enum")
    if enum is not None:
        if kind != "string" or not isinstance(enum, list) or not enum:
            raise doc.error((*path, "enum"), "must be a non-empty list, for a string input")
        enum = [str(e) for e in enum]
    mode = raw.get("mode")
    if mode is not None:
        if kind in LITERALS:
            raise doc.error((*path, "mode"), f"a {kind} input has no mode")
        if mode not in INPUT_MODES:
            raise doc.error((*path, "mode"), f"must be one of {', '.join(INPUT_MODES)}")
    spec = ComponentInput(
        type=str(kind), optional=optional, min=low, max=high, enum=enum, mode=mode,
        description=_string(doc, (*path, "description"), raw.get("description")),
    )  # fmt: skip
    if "default" in raw and raw["default"] is not None:
        spec.default = raw["default"]
        problem = check_value(spec, spec.default)
        if problem:
            raise doc.error((*path, "default"), problem)
    return spec


def check_value(spec: ComponentInput, value: Any) -> str | None:
    """Why ``value`` does not fit a literal input (type, min/max, enum); None when it does.
    Data inputs take a path or a reference, checked where it is resolved."""
    if spec.type not in LITERALS:
        return None
    if not _literal_fits(spec.type, value):
        return f"must be {'an' if spec.type == 'integer' else 'a'} {spec.type}, got {value!r}"
    if spec.min is not None and value < spec.min:
        return f"must be at least {spec.min:g}, got {value}"
    if spec.max is not None and value > spec.max:
        return f"must be at most {spec.max:g}, got {value}"
    if spec.enum is not None and str(value) not in spec.enum:
        return f"must be one of {', '.join(spec.enum)}, got {value!r}"
    return None


def _check_placeholders(doc: Located, spec: ComponentSpec) -> None:
    outside = _OPTIONAL.sub("", spec.command)
    for kind, name in _PLACEHOLDER.findall(spec.command):
        known: dict[str, Any] = spec.inputs if kind == "inputs" else spec.outputs
        if name not in known:
            raise doc.error(
                ("command",),
                f"refers to ${{{{{kind}.{name}}}}}, but the component has no "
                f"{kind[:-1]} '{name}'{suggest(name, set(known))}",
            )
    for kind, name in _PLACEHOLDER.findall(outside):
        if kind == "inputs" and spec.inputs[name].optional:
            raise doc.error(
                ("command",),
                f"uses optional input '{name}' outside $[[ ... ]] (put the part that needs it "
                "inside, so it is left out when the input is not given)",
            )


def parse_component(text: str, source: str = "<component>", base_dir: Path | None = None
                    ) -> ComponentSpec:  # fmt: skip
    doc = load(text, source)
    data = _mapping(doc, (), doc.data)
    COMPONENTS.of(doc, data)
    _check_keys(doc, (), data, TOP_LEVEL_KEYS, "a command component")
    name = _string(doc, ("name",), data.get("name"), required=True)
    assert name is not None
    if not _NAME.match(name):
        raise doc.error(
            ("name",),
            "must start with a lowercase letter or '_' and hold only lowercase letters, "
            "digits and '_' (Azure's rule)",
        )
    version = _string(doc, ("version",), data.get("version"))
    if version is not None and not _VERSION.match(version):
        raise doc.error(("version",), "may hold letters, digits, '_', '.' and '-' (up to 64)")
    command = _string(doc, ("command",), data.get("command"), required=True)
    assert command is not None
    deterministic = data.get("is_deterministic", True)
    if not isinstance(deterministic, bool):
        raise doc.error(("is_deterministic",), "must be true or false")
    count, instance_type = parse_resources(doc, data)
    code = parse_code(doc, data, base_dir)
    tags = _mapping(doc, ("tags",), data.get("tags"))
    env_vars = _mapping(doc, ("environment_variables",), data.get("environment_variables"))
    spec = ComponentSpec(
        name=name,
        command=command,
        version=version,
        display_name=_string(doc, ("display_name",), data.get("display_name")),
        description=_string(doc, ("description",), data.get("description")),
        tags={str(k): str(v) for k, v in tags.items()},
        is_deterministic=deterministic,
        code=code,
        environment=parse_environment(doc, data.get("environment")),
        inputs={
            str(k): _parse_input(doc, str(k), v)
            for k, v in _mapping(doc, ("inputs",), data.get("inputs")).items()
        },
        outputs={
            str(k): _parse_output(doc, str(k), v)
            for k, v in _mapping(doc, ("outputs",), data.get("outputs")).items()
        },
        environment_variables={str(k): str(v) for k, v in env_vars.items()},
        distribution=parse_distribution(doc, data.get("distribution"), count),
        instance_count=count,
        instance_type=instance_type,
        source=source,
    )
    _check_placeholders(doc, spec)
    return spec


def load_component_file(path: Path) -> ComponentSpec:
    """Parse a component file; a relative ``code`` is taken from the file's folder."""
    return parse_component(read_text_file(path, "component file"), str(path), path.parent)
