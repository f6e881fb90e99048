"""Batch-endpoint and batch-deployment YAML in Azure ML CLI v2's shape.

A file written for ``az ml batch-endpoint create -f`` or ``az ml
batch-deployment create -f`` loads here unchanged. Every complaint names the
file, the line and the key; keys Lapis does not know are refused by name with
a "did you mean", never ignored. Names follow the online-endpoint rules
(:func:`lapis.specs.endpoint.name_problem`), because both end up in URLs.

Defaults are Azure's: ``mini_batch_size`` 10, ``max_concurrency_per_instance``
1, ``output_action: append_row`` into ``predictions.csv``, three retries of a
mini-batch with a 30-second timeout, and ``error_threshold: -1`` (failures are
counted and reported, never fatal). ``error_threshold`` counts failed *files*.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lapis.errors import InvalidParameterValue
from lapis.specs.deployment import parse_code_configuration, parse_model
from lapis.specs.endpoint import name_problem
from lapis.specs.job import EnvironmentRef, parse_environment
from lapis.specs.yaml_lines import (
    Located,
    check_settings,
    located,
    section,
    string_map,
    suggest,
    whole_number,
)

ENDPOINT_KEYS = {"$schema", "name", "description", "tags", "defaults", "auth_mode"}
DEPLOYMENT_KEYS = {
    "$schema",
    "name",
    "endpoint_name",
    "type",
    "description",
    "tags",
    "model",
    "code_configuration",
    "environment",
    "compute",
    "resources",
    "max_concurrency_per_instance",
    "mini_batch_size",
    "output_action",
    "output_file_name",
    "retry_settings",
    "error_threshold",
    "logging_level",
    "environment_variables",
    "settings",
}
# what Azure's current schema puts under ``settings:`` (its older one: at the top level)
SETTINGS_KEYS = (
    "instance_count",
    "max_concurrency_per_instance",
    "mini_batch_size",
    "output_action",
    "output_file_name",
    "retry_settings",
    "error_threshold",
    "logging_level",
    "environment_variables",
)
OUTPUT_ACTIONS = ("append_row", "summary_only")
LOGGING_LEVELS = ("debug", "info", "warning", "error", "critical")
MAX_WORKERS = 64  # every worker is a process on the job's host
_FILE_NAME = re.compile(r"^[\w.\-]+$")


@dataclass
class BatchEndpointSpec:
    """A checked batch-endpoint document; ``given`` names the keys the user wrote."""

    name: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    default_deployment: str | None = None
    given: set[str] = field(default_factory=set)


@dataclass
class BatchDeploymentSpec:
    name: str = ""
    endpoint_name: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    model_name: str = ""
    model_version: str | None = None  # None: resolve ``model_label``
    model_label: str | None = None
    model_path: str | None = None  # inline: the client registers it first, then names it
    model_type: str = "custom_model"
    code: str | None = None
    scoring_script: str | None = None
    environment: EnvironmentRef = field(default_factory=lambda: EnvironmentRef("system"))
    environment_raw: Any = None
    compute: str = "local"
    instance_count: int = 1
    max_concurrency_per_instance: int = 1
    mini_batch_size: int = 10
    output_action: str = "append_row"
    output_file_name: str = "predictions.csv"
    max_retries: int = 3
    timeout: int = 30
    error_threshold: int = -1
    logging_level: str = "info"
    environment_variables: dict[str, str] = field(default_factory=dict)
    source: str = "<deployment>"

    def settings(self) -> dict[str, Any]:
        """What the batch driver needs (stored with the deployment, shipped in the job)."""
        return {
            "scoring_script": self.scoring_script,
            "workers": self.instance_count * self.max_concurrency_per_instance,
            "mini_batch_size": self.mini_batch_size,
            "output_action": self.output_action,
            "output_file_name": self.output_file_name,
            "max_retries": self.max_retries,
            "timeout": self.timeout,
            "error_threshold": self.error_threshold,
            "logging_level": self.logging_level,
        }

    def document(self) -> dict[str, Any]:
        """The normalised YAML document (what ``show`` prints), in Azure's key names."""
        tail = f":{self.model_version}" if self.model_version else f"@{self.model_label}"
        doc: dict[str, Any] = {
            "name": self.name,
            "endpoint_name": self.endpoint_name,
            "description": self.description,
            "tags": dict(self.tags),
            "model": f"azureml:{self.model_name}{tail}",
            "compute": self.compute,
            "resources": {"instance_count": self.instance_count},
            "max_concurrency_per_instance": self.max_concurrency_per_instance,
            "mini_batch_size": self.mini_batch_size,
            "output_action": self.output_action,
            "output_file_name": self.output_file_name,
            "retry_settings": {"max_retries": self.max_retries, "timeout": self.timeout},
            "error_threshold": self.error_threshold,
            "logging_level": self.logging_level,
            "environment_variables": dict(self.environment_variables),
            "environment": self.environment_raw if self.environment_raw is not None else "system",
        }
        if self.scoring_script is not None:
            doc["code_configuration"] = {"code": self.code, "scoring_script": self.scoring_script}
        return doc


def validate_name(name: object, what: str) -> str:
    if not isinstance(name, str):
        raise InvalidParameterValue(f"{what} name must be a string, got {name!r}")
    problem = name_problem(name)
    if problem:
        raise InvalidParameterValue(
            f"Invalid {what} name '{name}': it {problem} "
            "(3-32 characters: a letter first, then letters, digits or '-')",
            field="name",
        )
    return name


def _name(loc: Located, data: Mapping[str, Any], what: str) -> str:
    try:
        return validate_name(data["name"], what)
    except InvalidParameterValue as exc:
        raise loc.error(("name",), exc.message) from None


def _text(loc: Located, key: str, raw: Any) -> str | None:
    if raw is not None and not isinstance(raw, str):
        raise loc.error((key,), f"must be a string, got {type(raw).__name__}")
    return raw


def parse_batch_endpoint(
    doc: Mapping[str, Any] | Located, *, partial: bool = False
) -> BatchEndpointSpec:
    """Check a batch-endpoint document (``partial`` for update: name not required)."""
    loc = located(doc, "<batch endpoint>")
    data = check_settings(loc, ENDPOINT_KEYS, "batch endpoint")
    spec = BatchEndpointSpec(given={k for k in data if k != "$schema"})
    if "name" in data:
        spec.name = _name(loc, data, "batch endpoint")
    elif not partial:
        raise loc.error(("name",), "is required (3-32 letters, digits or '-')")
    if "auth_mode" in data and str(data["auth_mode"]).lower() not in ("key", "aad_token"):
        # Batch invocations are made with the caller's own token: any mode is accepted
        # and recorded nowhere, as long as it is one Azure knows.
        raise loc.error(("auth_mode",), f"must be aad_token or key, got {data['auth_mode']!r}")
    spec.description = _text(loc, "description", data.get("description"))
    spec.tags = string_map(loc, "tags", data.get("tags"))
    defaults = section(loc, "defaults", data.get("defaults"), {"deployment_name"})
    if defaults.get("deployment_name") is not None:
        try:
            spec.default_deployment = validate_name(defaults["deployment_name"], "deployment")
        except InvalidParameterValue as exc:
            raise loc.error(("defaults", "deployment_name"), exc.message) from None
    return spec


def _model(loc: Located, spec: BatchDeploymentSpec, raw: Any) -> None:
    """A registered model reference, or Azure's inline ``model: {path: ./model}``."""
    if raw is None:
        raise loc.error(
            ("model",),
            "is required (azureml:NAME:VERSION, NAME:VERSION, NAME@latest or {path: …})",
        )
    ref = parse_model(loc, raw)
    if ref.path is not None:
        spec.model_path, spec.model_type = ref.path, ref.type
        return
    spec.model_name = str(ref.name)
    spec.model_version = ref.version
    spec.model_label = None if ref.version else (ref.label or "latest")


def _settings_block(
    loc: Located, data: Mapping[str, Any]
) -> tuple[dict[str, Any], Callable[[str], tuple[str, ...]]]:
    """The run settings, from the top level (older files) or Azure's ``settings:`` block.

    Azure's current schema (``type: model``) nests them under ``settings:``; its
    older one, still in many samples, has them flat. Both are read; a setting
    given in both places is refused rather than one silently winning.
    """
    nested = section(loc, "settings", data.get("settings"), SETTINGS_KEYS)
    flat = {k: data[k] for k in SETTINGS_KEYS if k in data}
    for key in sorted(set(nested) & set(flat)):
        raise loc.error(("settings", key), "is given twice: here and at the top level")
    place = {k: ("settings", k) for k in nested}

    def at(key: str) -> tuple[str, ...]:
        return place.get(key, (key,))

    return {**flat, **nested}, at


def _retry(loc: Located, spec: BatchDeploymentSpec, raw: Any, path: tuple[str, ...]) -> None:
    if raw is not None and not isinstance(raw, Mapping):
        raise loc.error(path, f"must be a mapping, got {type(raw).__name__}")
    data = dict(raw or {})
    for sub in data:
        if sub not in ("max_retries", "timeout"):
            raise loc.error(
                (*path, str(sub)),
                f"is not a retry setting{suggest(str(sub), ('max_retries', 'timeout'))}; "
                "allowed: max_retries, timeout",
            )
    if "max_retries" in data:
        spec.max_retries = whole_number(loc, (*path, "max_retries"), data["max_retries"], 0, 100)
    if "timeout" in data:
        spec.timeout = whole_number(loc, (*path, "timeout"), data["timeout"], 1, 86_400)


def _choice(loc: Located, path: tuple[str, ...], raw: Any, allowed: tuple[str, ...]) -> str:
    text = str(raw).lower() if isinstance(raw, str) else ""
    if text not in allowed:
        raise loc.error(path, f"must be one of {', '.join(allowed)}, got {raw!r}")
    return text


def parse_batch_deployment(doc: Mapping[str, Any] | Located) -> BatchDeploymentSpec:
    """Check a batch-deployment document; every complaint names the file, line and key."""
    loc = located(doc, "<batch deployment>")
    data = check_settings(loc, DEPLOYMENT_KEYS, "batch deployment")
    spec = BatchDeploymentSpec(source=loc.source)
    if "name" not in data:
        raise loc.error(("name",), "is required (3-32 letters, digits or '-')")
    spec.name = _name(loc, data, "deployment")
    if data.get("endpoint_name") is not None:
        spec.endpoint_name = str(data["endpoint_name"])
    kind = data.get("type", "model")
    if kind != "model":
        raise loc.error(
            ("type",), f"must be model (pipeline deployments are not supported), got {kind!r}"
        )
    spec.description = _text(loc, "description", data.get("description"))
    spec.tags = string_map(loc, "tags", data.get("tags"))
    _model(loc, spec, data.get("model"))
    if data.get("code_configuration") is not None:
        spec.code, spec.scoring_script = parse_code_configuration(loc, data["code_configuration"])
    if data.get("environment") is not None:
        spec.environment = parse_environment(loc, data["environment"])
        spec.environment_raw = data["environment"]
    compute = data.get("compute")
    if compute is not None:
        if not isinstance(compute, str) or not compute.strip():
            raise loc.error(("compute",), f"must be a compute name, got {compute!r}")
        spec.compute = compute.strip().removeprefix("azureml:")
    resources = section(
        loc, "resources", data.get("resources"), {"instance_count", "instance_type"}
    )
    if "instance_count" in resources:
        spec.instance_count = whole_number(
            loc, ("resources", "instance_count"), resources["instance_count"], 1, MAX_WORKERS
        )
    settings, at = _settings_block(loc, data)
    if "instance_count" in settings:  # the SDK's ModelBatchDeploymentSettings carries it
        if "instance_count" in resources:
            raise loc.error(at("instance_count"), "is given twice: here and under resources")
        spec.instance_count = whole_number(
            loc, at("instance_count"), settings["instance_count"], 1, MAX_WORKERS
        )
    if "max_concurrency_per_instance" in settings:
        spec.max_concurrency_per_instance = whole_number(
            loc,
            at("max_concurrency_per_instance"),
            settings["max_concurrency_per_instance"],
            1,
            MAX_WORKERS,
        )
    workers = spec.instance_count * spec.max_concurrency_per_instance
    if workers > MAX_WORKERS:
        raise loc.error(
            at("max_concurrency_per_instance"),
            f"instance_count * max_concurrency_per_instance is {workers}; at most {MAX_WORKERS} "
            "worker processes run on one host",
        )
    if "mini_batch_size" in settings:
        spec.mini_batch_size = whole_number(
            loc, at("mini_batch_size"), settings["mini_batch_size"], 1, 100_000
        )
    if "output_action" in settings:
        spec.output_action = _choice(
            loc, at("output_action"), settings["output_action"], OUTPUT_ACTIONS
        )
    if "output_file_name" in settings:
        name = settings["output_file_name"]
        if not isinstance(name, str) or not _FILE_NAME.match(name):
            raise loc.error(
                at("output_file_name"),
                f"must be a plain file name (letters, digits, '.', '_', '-'), got {name!r}",
            )
        spec.output_file_name = name
    _retry(loc, spec, settings.get("retry_settings"), at("retry_settings"))
    if "error_threshold" in settings:
        spec.error_threshold = whole_number(
            loc, at("error_threshold"), settings["error_threshold"], -1, 2**31 - 1
        )
    if "logging_level" in settings:
        spec.logging_level = _choice(
            loc, at("logging_level"), settings["logging_level"], LOGGING_LEVELS
        )
    spec.environment_variables = string_map(
        loc, at("environment_variables"), settings.get("environment_variables")
    )
    return spec
