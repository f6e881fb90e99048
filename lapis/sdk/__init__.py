"""The native Python SDK: the fluent logging API and the HTTP plumbing under it.

Needs only httpx (and the standard library); importing it never pulls in the
server's dependencies.
"""

from lapis.sdk.connection import Connection, LapisHTTP, ServerNotFound, resolve
from lapis.sdk.fluent import (
    ActiveRun,
    RunInfo,
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

__all__ = [
    "ActiveRun",
    "Connection",
    "LapisHTTP",
    "RunInfo",
    "ServerNotFound",
    "active_run",
    "end_run",
    "flush",
    "log_artifact",
    "log_artifacts",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "resolve",
    "set_tag",
    "set_tags",
    "start_run",
]
