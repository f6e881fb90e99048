"""Online and batch serving entities, as ``azure.ai.ml.entities`` names them.

Each is built by the caller and answered by the server (``lapis.sdk.views``):
``online_endpoints.get(name)`` is a ``ManagedOnlineEndpoint`` with
``scoring_uri`` and ``provisioning_state`` read from the answer, and setting
``endpoint.traffic = {"blue": 100}`` then sending it back updates the traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lapis.api import endpoints as endpoints_api
from lapis.sdk.views import _View


@dataclass(repr=False)
class ManagedOnlineEndpoint(_View):
    """An online endpoint: a stable scoring URL, its key (or token) and a traffic split."""

    wire = endpoints_api.EndpointOut
    page = "/endpoints/{name}"

    name: str
    auth_mode: str = "key"
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def _values(cls, raw: dict[str, Any]) -> dict[str, Any]:
        values = super()._values(raw)
        for key in ("tags", "traffic", "mirror_traffic"):
            values[key] = dict(raw.get(key) or {})
        return values

    def __repr__(self) -> str:
        state = self.raw.get("provisioning_state")
        return f"ManagedOnlineEndpoint(name={self.name!r}, traffic={self.traffic!r}" + (
            f", provisioning_state={state!r})" if state else ")"
        )


@dataclass
class CodeConfiguration:
    """The scoring code: a local folder (uploaded) and the script in it."""

    code: str
    scoring_script: str


def _code(raw: Any) -> CodeConfiguration | None:
    if isinstance(raw, dict) and raw.get("scoring_script"):
        return CodeConfiguration(
            code=str(raw.get("code") or ""), scoring_script=raw["scoring_script"]
        )
    return None


@dataclass(repr=False)
class ManagedOnlineDeployment(_View):
    """``model`` is ``azureml:NAME:VERSION`` (or ``NAME@latest``), a registered ``Model``,
    or a ``Model(path=…)`` registered inline; ``environment`` as in jobs."""

    wire = endpoints_api.DeploymentOut

    name: str
    endpoint_name: str
    model: Any = None
    code_configuration: CodeConfiguration | None = None
    environment: Any = None
    instance_type: str | None = None
    instance_count: int = 1
    environment_variables: dict[str, str] = field(default_factory=dict)
    request_settings: dict[str, Any] = field(default_factory=dict)
    liveness_probe: dict[str, Any] = field(default_factory=dict)
    readiness_probe: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def _values(cls, raw: dict[str, Any]) -> dict[str, Any]:
        values = super()._values(raw)
        values["code_configuration"] = _code(raw.get("code_configuration"))
        values["instance_count"] = int(raw.get("instance_count") or 1)
        for key in (
            "environment_variables",
            "request_settings",
            "liveness_probe",
            "readiness_probe",
            "tags",
        ):
            values[key] = dict(raw.get(key) or {})
        return values

    @property
    def provisioning_state(self) -> str | None:
        return self.raw.get("provisioning_state")

    def __repr__(self) -> str:
        return (
            f"ManagedOnlineDeployment(name={self.name!r}, endpoint_name={self.endpoint_name!r}, "
            f"instance_count={self.instance_count!r}, "
            f"provisioning_state={self.provisioning_state!r})"
        )


KubernetesOnlineDeployment = ManagedOnlineDeployment  # same fields here: one host


@dataclass(repr=False)
class EndpointAuthKeys(_View):
    """An endpoint's two keys (``get_keys``); ``keys["primaryKey"]`` reads the JSON answer."""

    primary_key: str | None = None
    secondary_key: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def _values(cls, raw: dict[str, Any]) -> dict[str, Any]:
        return {"primary_key": raw.get("primaryKey"), "secondary_key": raw.get("secondaryKey")}

    def __repr__(self) -> str:
        return "EndpointAuthKeys(primary_key=…, secondary_key=…)"


@dataclass(repr=False)
class EndpointAuthToken(_View):
    """A short-lived scoring token of an ``aml_token`` endpoint (``get_keys``)."""

    access_token: str | None = None
    expiry_time_utc: int | None = None
    refresh_after_time_utc: int | None = None
    token_type: str = "Bearer"
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def _values(cls, raw: dict[str, Any]) -> dict[str, Any]:
        return {
            "access_token": raw.get("accessToken"),
            "expiry_time_utc": raw.get("expiryTimeUtc"),
            "refresh_after_time_utc": raw.get("refreshAfterTimeUtc"),
            "token_type": raw.get("tokenType") or "Bearer",
        }

    def __repr__(self) -> str:
        return f"EndpointAuthToken(expiry_time_utc={self.expiry_time_utc!r})"


# --- batch ----------------------------------------------------------------------------
@dataclass
class BatchEndpointDefaults:
    deployment_name: str | None = None


@dataclass(repr=False)
class BatchEndpoint(_View):
    """A batch endpoint; ``defaults.deployment_name`` is the deployment ``invoke`` uses."""

    wire = endpoints_api.BatchEndpointOut
    page = "/batch-endpoints/{name}"

    name: str
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    defaults: BatchEndpointDefaults | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def _values(cls, raw: dict[str, Any]) -> dict[str, Any]:
        values = super()._values(raw)
        values["tags"] = dict(raw.get("tags") or {})
        defaults = raw.get("defaults") or {}
        values["defaults"] = BatchEndpointDefaults(defaults.get("deployment_name"))
        return values

    def __repr__(self) -> str:
        default = self.defaults.deployment_name if self.defaults else None
        return f"BatchEndpoint(name={self.name!r}, default_deployment={default!r})"


@dataclass
class BatchRetrySettings:
    max_retries: int | None = None
    timeout: int | None = None


@dataclass
class ModelBatchDeploymentSettings:
    """The run settings of a ``ModelBatchDeployment`` (``settings:`` in its YAML)."""

    instance_count: int | None = None
    max_concurrency_per_instance: int | None = None
    mini_batch_size: int | None = None
    output_action: str | None = None
    output_file_name: str | None = None
    retry_settings: BatchRetrySettings | None = None
    error_threshold: int | None = None
    logging_level: str | None = None
    environment_variables: dict[str, str] = field(default_factory=dict)


class BatchDeploymentOutputAction:
    APPEND_ROW = "append_row"
    SUMMARY_ONLY = "summary_only"


_BATCH_SETTINGS = (
    "max_concurrency_per_instance",
    "mini_batch_size",
    "output_action",
    "output_file_name",
    "retry_settings",
    "error_threshold",
    "logging_level",
)


@dataclass(repr=False)
class BatchDeployment(_View):
    """A batch deployment in the older flat shape (settings as fields of their own)."""

    wire = endpoints_api.BatchDeploymentOut

    name: str
    endpoint_name: str | None = None
    model: Any = None
    code_configuration: CodeConfiguration | None = None
    environment: Any = None
    compute: str | None = None
    instance_count: int | None = None
    max_concurrency_per_instance: int | None = None
    mini_batch_size: int | None = None
    output_action: str | None = None
    output_file_name: str | None = None
    retry_settings: BatchRetrySettings | None = None
    error_threshold: int | None = None
    logging_level: str | None = None
    environment_variables: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def _values(cls, raw: dict[str, Any]) -> dict[str, Any]:
        values = super()._values(raw)
        values["code_configuration"] = _code(raw.get("code_configuration"))
        values["instance_count"] = (raw.get("resources") or {}).get("instance_count")
        retry = raw.get("retry_settings")
        values["retry_settings"] = BatchRetrySettings(**retry) if isinstance(retry, dict) else None
        values["environment_variables"] = dict(raw.get("environment_variables") or {})
        values["tags"] = dict(raw.get("tags") or {})
        return values

    def _document(self) -> dict[str, Any]:
        doc = super()._document()
        count = doc.pop("instance_count", None)
        if count is not None:
            doc["resources"] = {"instance_count": count}
        return doc

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, endpoint_name={self.endpoint_name!r})"


@dataclass(repr=False)
class ModelBatchDeployment(_View):
    """A batch deployment in Azure's current shape: ``settings`` holds the run settings."""

    wire = endpoints_api.BatchDeploymentOut

    name: str
    endpoint_name: str | None = None
    model: Any = None
    code_configuration: CodeConfiguration | None = None
    environment: Any = None
    compute: str | None = None
    settings: ModelBatchDeploymentSettings | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def _values(cls, raw: dict[str, Any]) -> dict[str, Any]:
        values = super()._values(raw)
        values["code_configuration"] = _code(raw.get("code_configuration"))
        retry = raw.get("retry_settings")
        values["settings"] = ModelBatchDeploymentSettings(
            instance_count=(raw.get("resources") or {}).get("instance_count"),
            retry_settings=BatchRetrySettings(**retry) if isinstance(retry, dict) else None,
            environment_variables=dict(raw.get("environment_variables") or {}),
            **{k: raw.get(k) for k in _BATCH_SETTINGS if k != "retry_settings"},
        )
        values["tags"] = dict(raw.get("tags") or {})
        return values

    def _document(self) -> dict[str, Any]:
        doc = {"type": "model", **super()._document()}
        settings = doc.get("settings") or {}
        count = settings.pop("instance_count", None)
        if count is not None:
            doc["resources"] = {"instance_count": count}
        if not settings:
            doc.pop("settings", None)
        return doc

    def __repr__(self) -> str:
        return f"ModelBatchDeployment(name={self.name!r}, endpoint_name={self.endpoint_name!r})"
