"""Command job specs in Azure ML CLI v2 YAML.

A file written for ``az ml job create`` loads here unchanged: the same keys,
the same ``${{inputs.x}}`` / ``${{outputs.y}}`` placeholders, the same
optional ``$[[ ... ]]`` segments, the same ``azureml:`` references. Everything
is checked before anything runs, and each complaint names the file, the line
and the key. ``--set key=value`` overrides are applied to the document first,
so they are checked the same way.
"""

from __future__ import annotations

import keyword
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lapis.errors import InvalidParameterValue
from lapis.specs.distribution import parse_distribution
from lapis.specs.kinds import JOBS
from lapis.specs.services import parse_services
from lapis.specs.yaml_lines import Located, load, read_text_file, safe_load, suggest
from lapis.util import random_name

TOP_LEVEL_KEYS = {
    "$schema",
    "type",
    "name",
    "display_name",
    "experiment_name",
    "description",
    "tags",
    "command",
    "code",
    "environment",
    "compute",
    "inputs",
    "outputs",
    "environment_variables",
    "limits",
    "resources",
    "distribution",
    "services",
    "properties",
}
INPUT_TYPES = {
    "string",
    "integer",
    "number",
    "boolean",
    "uri_file",
    "uri_folder",
    "mlflow_model",
    "custom_model",
    "mltable",
}
OUTPUT_TYPES = {"uri_folder", "uri_file", "mlflow_model", "custom_model", "mltable"}
INPUT_KEYS = {"type", "path", "default", "optional", "mode", "description", "value"}
OUTPUT_KEYS = {"type", "path", "mode", "description", "name", "version"}
# Azure's modes (azure.ai.ml.constants.InputOutputModes); how each is carried out is in
# lapis/compute/data_inputs.py and docs/data.md.
INPUT_MODES = ("ro_mount", "download", "direct", "eval_mount", "eval_download")
OUTPUT_MODES = ("rw_mount", "upload", "direct")
_PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z_][\w]*)\s*\}\}")
_OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)
_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")
_IO_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
# Input/output names become keyword arguments in the SDK and path segments in
# ``${{inputs.x}}`` expressions, so Python keywords and the expression roots
# themselves are refused, as Azure's SDK refuses them.
RESERVED_IO_NAMES = frozenset(keyword.kwlist) | {"inputs", "outputs", "parent", "jobs", "self"}


@dataclass
class JobInput:
    type: str
    value: Any = None  # literal inputs
    path: str | None = None  # uri_file / uri_folder / models
    mode: str = "ro_mount"
    optional: bool = False


@dataclass
class JobOutput:
    type: str = "uri_folder"
    mode: str = "rw_mount"
    path: str | None = None  # azureml://datastores/<ds>/paths/<p>; None: the default datastore
    name: str | None = None  # registered as this data asset when the job completes
    version: str | None = None


@dataclass
class EnvironmentRef:
    """What ``environment:`` named: a registered/curated one, ``system``, or an inline spec."""

    kind: str  # "registered" | "system" | "inline" | "file" (name holds the path)
    name: str | None = None
    version: str | None = None  # None with label "latest"
    label: str | None = None
    image: str | None = None
    conda_file: Any = None
    registry: str | None = None  # azureml://registries/<registry>/environments/…
    build: dict[str, str] | None = None  # a Docker context: {"path", "dockerfile_path"}


@dataclass
class CommandJobSpec:
    name: str
    command: str
    compute: str = "local"
    display_name: str | None = None
    experiment_name: str = "Default"
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    code: str | None = None
    environment: EnvironmentRef = field(default_factory=lambda: EnvironmentRef("system"))
    inputs: dict[str, JobInput] = field(default_factory=dict)
    outputs: dict[str, JobOutput] = field(default_factory=dict)
    environment_variables: dict[str, str] = field(default_factory=dict)
    timeout_seconds: int | None = None
    instance_count: int = 1
    instance_type: str | None = None  # resources.instance_type: the size serverless uses
    distribution: dict[str, Any] | None = None  # lapis/specs/distribution.py
    max_retries: int = 0  # limits.max_retries: runs again after a lost node (jobs/retry.py)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)  # specs/services.py
    source: str = "<job>"


def generated_name() -> str:
    """A readable job name in Azure's shape: ``brave_owl_3k7x``."""
    adjective, noun, _ = random_name("_").split("_")
    return f"{adjective}_{noun}_{secrets.token_hex(2)}"


def _check_keys(
    doc: Located, path: tuple[str, ...], value: dict[str, Any], allowed: set[str], what: str
) -> None:
    for key in value:
        if key not in allowed:
            raise doc.error((*path, key), f"is not a valid key of {what}{suggest(key, allowed)}")


def _mapping(doc: Located, path: tuple[str, ...], value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise doc.error(path, f"must be a mapping, got {type(value).__name__}")
    return value


def _string(doc: Located, path: tuple[str, ...], value: Any, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise doc.error(path, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise doc.error(path, f"must be a string, got {type(value).__name__}")
    return str(value)


def _check_io_name(doc: Located, path: tuple[str, ...], name: str) -> None:
    if not _IO_NAME.match(name):
        raise doc.error(path, "must start with a letter or '_' and hold only letters, digits, '_'")
    if name in RESERVED_IO_NAMES:
        raise doc.error(path, f"'{name}' is a reserved name; choose another {path[0][:-1]} name")


def _parse_input(doc: Located, name: str, raw: Any) -> JobInput:
    path = ("inputs", name)
    _check_io_name(doc, path, name)
    if not isinstance(raw, dict):
        if isinstance(raw, list):
            raise doc.error(path, "must be a literal value or a mapping with 'type'")
        kind = {bool: "boolean", int: "integer", float: "number"}.get(type(raw), "string")
        return JobInput(type=kind, value=raw)
    _check_keys(doc, path, raw, INPUT_KEYS, f"input '{name}'")
    kind = raw.get("type", "uri_folder" if "path" in raw else "string")
    if kind not in INPUT_TYPES:
        raise doc.error(
            (*path, "type"),
            f"must be one of {', '.join(sorted(INPUT_TYPES))}{suggest(str(kind), INPUT_TYPES)}",
        )
    optional = bool(raw.get("optional", False))
    if kind in ("string", "integer", "number", "boolean"):
        value = raw.get("value", raw.get("default"))
        return JobInput(type=kind, value=value, optional=optional)
    location = _string(doc, (*path, "path"), raw.get("path"), required=not optional)
    mode = str(raw.get("mode", "ro_mount"))
    if mode not in INPUT_MODES:
        hint = " (rw_mount is for outputs)" if mode == "rw_mount" else suggest(mode, INPUT_MODES)
        raise doc.error((*path, "mode"), f"must be one of {', '.join(INPUT_MODES)}{hint}")
    if mode.startswith("eval_") and kind != "mltable":
        raise doc.error((*path, "mode"), f"{mode} is for mltable inputs, not {kind}")
    return JobInput(type=kind, path=location, mode=mode, optional=optional)


def _parse_output(doc: Located, name: str, raw: Any) -> JobOutput:
    path = ("outputs", name)
    _check_io_name(doc, path, name)
    if raw is None:
        return JobOutput()
    raw = _mapping(doc, path, raw)
    _check_keys(doc, path, raw, OUTPUT_KEYS, f"output '{name}'")
    kind = raw.get("type", "uri_folder")
    if kind not in OUTPUT_TYPES:
        raise doc.error((*path, "type"), f"must be one of {', '.join(sorted(OUTPUT_TYPES))}")
    mode = str(raw.get("mode", "rw_mount"))
    if mode not in OUTPUT_MODES:
        hint = " (it is for inputs)" if mode in INPUT_MODES else suggest(mode, OUTPUT_MODES)
        raise doc.error((*path, "mode"), f"must be one of {', '.join(OUTPUT_MODES)}{hint}")
    where = _string(doc, (*path, "path"), raw.get("path"))
    if where is not None and not where.lower().startswith("azureml://datastores/"):
        raise doc.error(
            (*path, "path"),
            "an output goes to a datastore: azureml://datastores/<datastore>/paths/<path> "
            "(leave it out for the default: workspaceblobstore, azureml/<job>/<output>/)",
        )
    asset = _string(doc, (*path, "name"), raw.get("name"))
    version = raw.get("version")
    if version is not None and asset is None:
        raise doc.error((*path, "version"), "needs name: (the data asset to register)")
    if asset is not None and not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$", asset):
        raise doc.error((*path, "name"), "a data asset name holds letters, digits, '_', '.', '-'")
    return JobOutput(
        type=kind, mode=mode, path=where, name=asset,
        version=None if version is None else str(version),
    )  # fmt: skip


_ENV_REF = re.compile(
    r"^(?:azureml:)?(?P<name>[A-Za-z0-9][\w.\-]*)(?::(?P<version>[\w.\-]+)|@(?P<label>\w+))?$"
)


_REGISTRY_REF = re.compile(
    r"^azureml://registries/(?P<registry>[\w.\-]+)/environments/(?P<name>[\w.\-]+)"
    r"(?:/versions/(?P<version>[\w.\-]+)|/labels/(?P<label>\w+))?/?$"
)


def parse_environment(doc: Located, raw: Any) -> EnvironmentRef:
    path = ("environment",)
    if raw is None or raw == "system":
        return EnvironmentRef("system")
    if isinstance(raw, str) and raw.strip().startswith("file:"):
        location = raw.strip()[5:].strip()
        if not location:
            raise doc.error(path, "'file:' needs the path of an environment YAML file")
        return EnvironmentRef("file", name=location)
    if isinstance(raw, str) and raw.strip().startswith("azureml://registries/"):
        r = _REGISTRY_REF.match(raw.strip())
        if r is None:
            raise doc.error(
                path,
                f"'{raw}' is not a registry environment; use azureml://registries/<registry>"
                "/environments/<name>/versions/<version> or …/labels/latest",
            )
        return EnvironmentRef(
            "registered",
            name=r["name"],
            version=r["version"],
            label=r["label"] or (None if r["version"] else "latest"),
            registry=r["registry"],
        )
    if isinstance(raw, str):
        m = _ENV_REF.match(raw.strip())
        if m is None:
            raise doc.error(
                path,
                f"'{raw}' is not an environment reference; use "
                "azureml:NAME:VERSION, azureml:NAME@latest, NAME, file:PATH or system",
            )
        return EnvironmentRef(
            "registered",
            name=m["name"],
            version=m["version"],
            label=m["label"] or (None if m["version"] else "latest"),
        )
    raw = _mapping(doc, path, raw)
    _check_keys(
        doc,
        path,
        raw,
        {"image", "conda_file", "name", "version", "description", "build", "tags", "$schema"},
        "environment",
    )
    build = _build(doc, (*path, "build"), raw["build"]) if "build" in raw else None
    if build is None and "image" not in raw and "conda_file" not in raw:
        raise doc.error(path, "an inline environment needs 'image' and/or 'conda_file'")
    if build is not None and ("image" in raw or "conda_file" in raw):
        raise doc.error(
            (*path, "build"), "give either a Docker build context or image/conda_file, not both"
        )
    return EnvironmentRef(
        "inline",
        name=raw.get("name"),
        version=_string(doc, (*path, "version"), raw.get("version")),
        image=raw.get("image"),
        conda_file=raw.get("conda_file"),
        build=build,
    )


def _build(doc: Located, path: tuple[str, ...], raw: Any) -> dict[str, str]:
    """``build: {path: ./context, dockerfile_path: Dockerfile}`` (Azure's shape)."""
    data = _mapping(doc, path, raw)
    _check_keys(doc, path, data, {"path", "dockerfile_path"}, "build")
    context = data.get("path")
    if not isinstance(context, str) or not context.strip():
        raise doc.error(path, "needs 'path': the folder holding the Dockerfile")
    if "://" in context or context.startswith("azureml:"):
        raise doc.error((*path, "path"), "must be a local folder (remote contexts are not read)")
    dockerfile = data.get("dockerfile_path") or "Dockerfile"
    if (
        not isinstance(dockerfile, str)
        or dockerfile.startswith("/")
        or ".." in dockerfile.split("/")
    ):
        raise doc.error(
            (*path, "dockerfile_path"), "must be a relative path inside the context folder"
        )
    return {"path": context, "dockerfile_path": dockerfile}


def _check_placeholders(doc: Located, spec: CommandJobSpec) -> None:
    # An input named only inside $[[ … ]] may be left undeclared: like an optional input
    # left unset, its segment is dropped (azure-ai-ml accepts such a job).
    outside = _OPTIONAL.sub("", spec.command)
    optional_only = {
        name for kind, name in _PLACEHOLDER.findall(spec.command) if kind == "inputs"
    } - {name for kind, name in _PLACEHOLDER.findall(outside) if kind == "inputs"}
    for kind, name in _PLACEHOLDER.findall(spec.command):
        if kind == "inputs" and name in optional_only and name not in spec.inputs:
            continue
        known = spec.inputs if kind == "inputs" else spec.outputs
        if name not in known:
            raise doc.error(
                ("command",),
                f"refers to ${{{{{kind}.{name}}}}}, but the job has no "
                f"{kind[:-1]} '{name}'{suggest(name, set(known))}",
            )
    required_outside = _PLACEHOLDER.findall(outside)
    for kind, name in required_outside:
        job_input = spec.inputs.get(name) if kind == "inputs" else None
        if job_input is not None and job_input.optional:
            raise doc.error(("command",), f"uses optional input '{name}' outside $[[ ... ]]")


def render_command(command: str, inputs: dict[str, str], outputs: dict[str, str]) -> str:
    """Drop ``$[[...]]`` segments whose inputs are unset, then fill in every placeholder."""

    def keep(match: re.Match[str]) -> str:
        segment = match.group(1)
        names = [n for k, n in _PLACEHOLDER.findall(segment) if k == "inputs"]
        return segment if all(inputs.get(n) is not None for n in names) else ""

    text = _OPTIONAL.sub(keep, command)

    def fill(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2)
        return str((inputs if kind == "inputs" else outputs)[name])

    return _PLACEHOLDER.sub(fill, text)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> None:
    """``--set inputs.lr=0.1 --set compute=cpu-dev``: dotted paths, YAML-typed values."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InvalidParameterValue(f"--set expects key=value, got '{item}'")
        parts = key.strip().split(".")
        target = data
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise InvalidParameterValue(f"--set {key}: '{part}' is not a mapping")
        target[parts[-1]] = safe_load(raw, f"--set {key}") if raw.strip() else ""


def parse_resources(doc: Located, data: dict[str, Any]) -> tuple[int, str | None]:
    """``resources:`` of a job or a component: (instance_count, instance_type)."""
    resources = _mapping(doc, ("resources",), data.get("resources"))
    allowed = {"instance_count", "instance_type", "shm_size", "properties", "docker_args",
               "locations", "max_instance_count"}  # fmt: skip
    _check_keys(doc, ("resources",), resources, allowed, "resources")
    count = resources.get("instance_count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise doc.error(("resources", "instance_count"), "must be a positive integer")
    instance_type = resources.get("instance_type")
    if instance_type is not None and not isinstance(instance_type, str):
        raise doc.error(("resources", "instance_type"), "must be a VM size name")
    return count, instance_type


def parse_code(doc: Located, data: dict[str, Any], base_dir: Path | None) -> str | None:
    """``code:``, a relative folder taken from the file's own folder (as Azure does)."""
    code = _string(doc, ("code",), data.get("code"))
    if code is not None and base_dir is not None and "://" not in code:
        code = str((base_dir / code).resolve())
    return code


def parse_job(
    text: str,
    source: str = "<job>",
    overrides: list[str] | None = None,
    base_dir: Path | None = None,
) -> CommandJobSpec:
    doc = load(text, source)
    data = _mapping(doc, (), doc.data)
    apply_overrides(data, overrides or [])
    JOBS.of(doc, data)  # first: every other key means something only for its type
    _check_keys(doc, (), data, TOP_LEVEL_KEYS, "a command job")
    command = _string(doc, ("command",), data.get("command"), required=True)
    assert command is not None
    name = _string(doc, ("name",), data.get("name")) or generated_name()
    if not _NAME.match(name):
        raise doc.error(("name",), "may only hold letters, digits, '_' and '-' (1-255)")
    compute = (_string(doc, ("compute",), data.get("compute")) or "local").removeprefix("azureml:")
    limits = _mapping(doc, ("limits",), data.get("limits"))
    _check_keys(doc, ("limits",), limits, {"timeout", "max_retries"}, "limits")
    retries = limits.get("max_retries", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise doc.error(("limits", "max_retries"), "must be a whole number from 0 to 10")
    timeout = limits.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0
    ):
        raise doc.error(("limits", "timeout"), "must be a positive number of seconds")
    count, instance_type = parse_resources(doc, data)
    code = parse_code(doc, data, base_dir)
    env_vars = _mapping(doc, ("environment_variables",), data.get("environment_variables"))
    tags = _mapping(doc, ("tags",), data.get("tags"))
    spec = CommandJobSpec(
        name=name,
        command=command,
        compute=compute,
        display_name=_string(doc, ("display_name",), data.get("display_name")),
        experiment_name=_string(doc, ("experiment_name",), data.get("experiment_name"))
        or "Default",
        description=_string(doc, ("description",), data.get("description")),
        tags={str(k): str(v) for k, v in tags.items()},
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
        timeout_seconds=timeout,
        instance_count=count,
        instance_type=instance_type,
        distribution=parse_distribution(doc, data.get("distribution"), count),
        max_retries=retries,
        services=parse_services(doc, data.get("services")),
        source=source,
    )
    _check_placeholders(doc, spec)
    return spec


def load_job_file(path: Path, overrides: list[str] | None = None) -> CommandJobSpec:
    """Parse a job file; relative ``code`` paths are taken from the file's folder, as Azure does."""
    text = read_text_file(path, "job file")
    return parse_job(text, str(path), overrides, base_dir=path.parent)
