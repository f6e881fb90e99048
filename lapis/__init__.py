"""Lapis: a self-hosted machine-learning workspace.

``import lapis`` is the SDK entry point and stays light: the names below are
resolved on first use (PEP 562), so importing the package loads neither the
SDK's HTTP client nor anything of the server (FastAPI, SQLAlchemy) or mlflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lapis.version import __version__

__all__ = [
    "ActiveRun",
    "AssetTypes",
    "BatchDeployment",
    "BatchEndpoint",
    "BuildContext",
    "CodeConfiguration",
    "ComputeInstance",
    "Data",
    "Environment",
    "Input",
    "InputOutputModes",
    "MLClient",
    "ManagedOnlineDeployment",
    "ManagedOnlineEndpoint",
    "Model",
    "ModelBatchDeployment",
    "Output",
    "__version__",
    "active_run",
    "command",
    "end_run",
    "flush",
    "log_artifact",
    "log_artifacts",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "set_tag",
    "set_tags",
    "start_run",
]

# name -> module that defines it
_SDK_NAMES = {
    "MLClient": "lapis.sdk.client",
    "command": "lapis.sdk.entities",
    "Input": "lapis.sdk.entities",
    "Model": "lapis.sdk.models",
    "AssetTypes": "lapis.sdk.assets",
    "BuildContext": "lapis.sdk.assets",
    "ComputeInstance": "lapis.sdk.assets",
    "Data": "lapis.sdk.assets",
    "Environment": "lapis.sdk.assets",
    "InputOutputModes": "lapis.sdk.assets",
    "BatchDeployment": "lapis.sdk.serving_entities",
    "BatchEndpoint": "lapis.sdk.serving_entities",
    "CodeConfiguration": "lapis.sdk.serving_entities",
    "ManagedOnlineDeployment": "lapis.sdk.serving_entities",
    "ManagedOnlineEndpoint": "lapis.sdk.serving_entities",
    "ModelBatchDeployment": "lapis.sdk.serving_entities",
    "Output": "lapis.sdk.entities",
}
_LAZY: dict[str, str] = {
    name: _SDK_NAMES.get(name, "lapis.sdk.fluent") for name in __all__ if name != "__version__"
}

if TYPE_CHECKING:
    from lapis.sdk.assets import (
        AssetTypes,
        BuildContext,
        ComputeInstance,
        Data,
        Environment,
        InputOutputModes,
    )
    from lapis.sdk.client import MLClient
    from lapis.sdk.entities import Input, Output, command
    from lapis.sdk.fluent import (
        ActiveRun,
        active_run,
        end_run,
        flush,
        log_artifact,
        log_artifacts,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        set_tag,
        set_tags,
        start_run,
    )
    from lapis.sdk.models import Model
    from lapis.sdk.serving_entities import (
        BatchDeployment,
        BatchEndpoint,
        CodeConfiguration,
        ManagedOnlineDeployment,
        ManagedOnlineEndpoint,
        ModelBatchDeployment,
    )


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'lapis' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
