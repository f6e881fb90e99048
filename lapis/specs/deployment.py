"""Online-deployment YAML in Azure ML CLI v2's ``managedOnlineDeployment`` shape.

A file written for ``az ml online-deployment create -f`` loads here: ``name``,
``endpoint_name``, ``model``, ``code_configuration``, ``environment``,
``instance_type``, ``instance_count``, ``environment_variables``,
``request_settings``, ``liveness_probe``, ``readiness_probe``, ``description``,
``tags`` and ``app_insights_enabled``. Unknown keys are refused by name with
the file and line, never ignored.

Probe defaults are deliberately tolerant (a known Azure pain is a slow model
killed in a loop): readiness only takes an instance out of rotation and keeps
waiting — it never restarts anything — and liveness restarts an instance only
after ``/health`` (which the scoring server answers while the model is still
loading) has gone unanswered ``failure_threshold`` times in a row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from lapis.errors import InvalidParameterValue
from lapis.specs.endpoint import name_problem
from lapis.specs.job import EnvironmentRef, parse_environment
from lapis.specs.yaml_lines import (
    Located,
    check_settings,
    located,
    section,
    string_map,
    whole_number,
)

KEYS = {
    "$schema",
    "name",
    "endpoint_name",
    "type",
    "model",
    "code_configuration",
    "environment",
    "instance_type",
    "instance_count",
    "environment_variables",
    "request_settings",
    "liveness_probe",
    "readiness_probe",
    "description",
    "tags",
    "app_insights_enabled",
}
MAX_INSTANCES = 32  # every instance is a process on this host
MODEL_KEYS = {"path", "type", "name", "version", "description", "tags"}
CODE_KEYS = {"code", "scoring_script"}
REQUEST_KEYS = {"request_timeout_ms", "max_concurrent_requests_per_instance", "max_queue_wait_ms"}
PROBE_KEYS = ("initial_delay", "period", "timeout", "success_threshold", "failure_threshold")
NEEDS_SCRIPT = (
    "is required for a custom_model: give code and scoring_script (a script with init() and "
    "run(raw_data)); only an mlflow_model may leave it out"
)
_MODEL_REF = re.compile(
    r"^(?:azureml:)?(?P<name>[^:@/\s]+)(?::(?P<version>\d+)|@(?P<label>[A-Za-z_][\w-]*))$"
)

DEFAULT_MAX_CONCURRENT = 1  # Azure's default max_concurrent_requests_per_instance
DEFAULT_REQUEST_TIMEOUT_MS = 5000


@dataclass
class ModelRef:
    """``name:version`` / ``name@latest`` (registered) or an inline local ``path``."""

    name: str | None = None
    version: str | None = None
    label: str | None = None
    path: str | None = None  # inline: the client uploads it as a new version first
    type: str = "custom_model"

    @property
    def reference(self) -> str:
        tail = f":{self.version}" if self.version else f"@{self.label or 'latest'}"
        return f"azureml:{self.name}{tail}"


@dataclass
class RequestSettings:
    request_timeout_ms: int = DEFAULT_REQUEST_TIMEOUT_MS
    max_concurrent_requests_per_instance: int = DEFAULT_MAX_CONCURRENT
    max_queue_wait_ms: int = 500  # accepted and recorded (Azure has deprecated it)


@dataclass
class Probe:
    """Seconds and counts, as Azure names them."""

    initial_delay: int = 0
    period: int = 10
    timeout: int = 2
    success_threshold: int = 1
    failure_threshold: int = 30


def default_liveness() -> Probe:
    """Restart only after 30 unanswered ``/health`` calls 10 s apart (Azure's numbers)."""
    return Probe(initial_delay=10, period=10, timeout=2, success_threshold=1, failure_threshold=30)


def default_readiness() -> Probe:
    """Every 10 s once ready (often before); failing it never restarts anything."""
    return Probe(initial_delay=0, period=10, timeout=2, success_threshold=1, failure_threshold=3)


@dataclass
class DeploymentSpec:
    name: str = ""
    endpoint_name: str | None = None
    model: ModelRef | None = None
    code: str | None = None
    scoring_script: str | None = None
    environment: EnvironmentRef | None = None  # None: Lapis' own interpreter
    environment_raw: Any = None
    instance_type: str | None = None
    instance_count: int = 1
    environment_variables: dict[str, str] = field(default_factory=dict)
    request_settings: RequestSettings = field(default_factory=RequestSettings)
    liveness_probe: Probe = field(default_factory=default_liveness)
    readiness_probe: Probe = field(default_factory=default_readiness)
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    app_insights_enabled: bool = False
    source: str = "<deployment>"

    def document(self) -> dict[str, Any]:
        """The normalised YAML document (what is stored and what ``show`` prints)."""
        doc: dict[str, Any] = {
            "name": self.name,
            "endpoint_name": self.endpoint_name,
            "model": self.model.reference if self.model and self.model.name else None,
            "instance_type": self.instance_type,
            "instance_count": self.instance_count,
            "environment_variables": dict(self.environment_variables),
            "request_settings": asdict(self.request_settings),
            "liveness_probe": asdict(self.liveness_probe),
            "readiness_probe": asdict(self.readiness_probe),
            "description": self.description,
            "tags": dict(self.tags),
            "app_insights_enabled": self.app_insights_enabled,
        }
        if self.scoring_script is not None:
            doc["code_configuration"] = {"code": self.code, "scoring_script": self.scoring_script}
        if self.environment_raw is not None:
            doc["environment"] = self.environment_raw
        return doc


def validate_deployment_name(name: object) -> str:
    if not isinstance(name, str):
        raise InvalidParameterValue(f"Deployment name must be a string, got {name!r}")
    problem = name_problem(name)
    if problem:
        raise InvalidParameterValue(f"Invalid deployment name '{name}': it {problem}")
    return name


def parse_model(loc: Located, raw: Any) -> ModelRef:
    path = ("model",)
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("azureml://"):
            raise loc.error(path, f"'{raw}': registry and datastore URIs are not supported here")
        m = _MODEL_REF.match(text)
        if m is None:
            raise loc.error(
                path,
                f"'{raw}' is not a model reference; use azureml:NAME:VERSION, NAME:VERSION, "
                "NAME@latest, or an inline mapping with a local 'path'",
            )
        return ModelRef(name=m["name"], version=m["version"], label=m["label"])
    data = section(loc, "model", raw, MODEL_KEYS)
    if not data:
        raise loc.error(path, "must be a model reference (azureml:NAME:VERSION) or {path: …}")
    if not isinstance(data.get("path"), str) or not data["path"]:
        raise loc.error(path, "an inline model needs 'path' (a local file or folder)")
    mtype = data.get("type") or "custom_model"
    if mtype not in ("custom_model", "mlflow_model"):
        raise loc.error((*path, "type"), f"must be custom_model or mlflow_model, got {mtype!r}")
    return ModelRef(path=data["path"], type=mtype)


def _probe(loc: Located, key: str, raw: Any, default: Probe) -> Probe:
    data = section(loc, key, raw, PROBE_KEYS)
    values = asdict(default)
    for sub, value in data.items():
        low = 0 if sub == "initial_delay" else 1
        values[sub] = whole_number(loc, (key, sub), value, low, 3600)
    return Probe(**values)


def _requests(loc: Located, raw: Any) -> RequestSettings:
    data = section(loc, "request_settings", raw, REQUEST_KEYS)
    out = RequestSettings()
    bounds = {
        "request_timeout_ms": (1, 3_600_000),
        "max_concurrent_requests_per_instance": (1, 1000),
        "max_queue_wait_ms": (0, 3_600_000),
    }
    for sub, value in data.items():
        low, high = bounds[sub]
        setattr(out, sub, whole_number(loc, ("request_settings", sub), value, low, high))
    return out


def parse_code_configuration(loc: Located, raw: Any) -> tuple[str, str]:
    """``code_configuration`` of an online or batch deployment: (code folder, script path
    inside it)."""
    data = section(loc, "code_configuration", raw, CODE_KEYS)
    for sub in ("code", "scoring_script"):
        if not isinstance(data.get(sub), str) or not data[sub].strip():
            what = "the folder holding the scoring code" if sub == "code" else "the script's path"
            raise loc.error(("code_configuration", sub), f"is required ({what})")
    script = str(data["scoring_script"]).replace("\\", "/")
    if script.startswith("/") or ".." in script.split("/"):
        raise loc.error(
            ("code_configuration", "scoring_script"),
            f"'{script}' must be a path inside the code folder",
        )
    return str(data["code"]), script


def parse_deployment(doc: Mapping[str, Any] | Located) -> DeploymentSpec:
    """Check a deployment document; every complaint names the file, line and key."""
    loc = located(doc, "<deployment>")
    data = check_settings(loc, KEYS, "online deployment")
    spec = DeploymentSpec(source=loc.source)
    if "name" not in data:
        raise loc.error(("name",), "is required (3-32 letters, digits or '-')")
    try:
        spec.name = validate_deployment_name(data["name"])
    except InvalidParameterValue as exc:
        raise loc.error(("name",), exc.message) from None
    if data.get("endpoint_name") is not None:
        spec.endpoint_name = str(data["endpoint_name"])
    kind = data.get("type", "managed")
    if kind not in ("managed", "kubernetes"):
        raise loc.error(("type",), f"must be managed, got {kind!r}")
    if data.get("model") is None:
        raise loc.error(("model",), "is required (azureml:NAME:VERSION or {path: …})")
    spec.model = parse_model(loc, data["model"])
    if data.get("code_configuration") is not None:
        spec.code, spec.scoring_script = parse_code_configuration(loc, data["code_configuration"])
    elif spec.model.path is not None and spec.model.type != "mlflow_model":
        raise loc.error(("code_configuration",), NEEDS_SCRIPT)
    if data.get("environment") is not None:
        spec.environment = parse_environment(loc, data["environment"])
        spec.environment_raw = data["environment"]
    if data.get("instance_type") is not None:
        spec.instance_type = str(data["instance_type"])
    if "instance_count" in data:
        spec.instance_count = whole_number(
            loc, ("instance_count",), data["instance_count"], 1, MAX_INSTANCES
        )
    spec.environment_variables = string_map(
        loc, "environment_variables", data.get("environment_variables")
    )
    spec.tags = string_map(loc, "tags", data.get("tags"))
    spec.request_settings = _requests(loc, data.get("request_settings"))
    spec.liveness_probe = _probe(
        loc, "liveness_probe", data.get("liveness_probe"), default_liveness()
    )
    spec.readiness_probe = _probe(
        loc, "readiness_probe", data.get("readiness_probe"), default_readiness()
    )
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise loc.error(("description",), "must be a string")
    spec.description = description
    insights = data.get("app_insights_enabled", False)
    if not isinstance(insights, bool):
        raise loc.error(("app_insights_enabled",), f"must be true or false, got {insights!r}")
    spec.app_insights_enabled = insights
    return spec
