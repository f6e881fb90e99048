"""The module-level logging API: ``lapis.start_run()``, ``lapis.log_metric()``, ...

Shaped like MLflow's fluent API so that code moves between the two with a
search-and-replace: a stack of active runs (``nested=True`` starts a child),
a run started implicitly by the first logging call, and runs ended at
interpreter exit. Every metric, param and tag goes through the run's
``MetricWriter``; nothing here waits on the network except ``start_run``,
``end_run``, ``flush`` and ``log_artifact``.

Inside a Lapis job (``LAPIS_RUN_ID`` or ``MLFLOW_RUN_ID`` set) ``start_run()``
attaches to the job's run instead of creating one. An attached run is only
flushed at exit, not ended: the job's supervisor owns its final status.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from lapis.errors import InvalidParameterValue, LapisError
from lapis.sdk.artifacts import upload_dir, upload_file
from lapis.sdk.connection import Connection, LapisHTTP, resolve
from lapis.sdk.writer import MetricWriter

_TERMINAL = ("FINISHED", "FAILED", "KILLED")


@dataclass
class RunInfo:
    """What the server told us about a run when it was started or attached."""

    run_id: str
    experiment_id: str
    run_name: str | None
    status: str
    artifact_uri: str
    start_time: int | None = None
    user_id: str | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> RunInfo:
        return cls(
            run_id=str(body["run_id"]),
            experiment_id=str(body["experiment_id"]),
            run_name=body.get("run_name"),
            status=str(body.get("status", "RUNNING")),
            artifact_uri=str(body.get("artifact_uri", "")),
            start_time=body.get("start_time"),
            user_id=body.get("user_id"),
        )


class ActiveRun:
    """A run this process logs to; ``with`` ends it FINISHED, or FAILED on an exception."""

    def __init__(self, info: RunInfo, http: LapisHTTP, writer: MetricWriter, owned: bool) -> None:
        self.info = info
        self.http = http
        self.writer = writer
        self.owned = owned  # False when attached to a job's run: the job ends it

    @property
    def run_id(self) -> str:
        return self.info.run_id

    @property
    def experiment_id(self) -> str:
        return self.info.experiment_id

    def __repr__(self) -> str:
        return f"<ActiveRun run_id={self.run_id} name={self.info.run_name!r}>"

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = "FINISHED"
        else:
            status = "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"
        if self in _state.stack:
            _end(self, status, raise_errors=exc_type is None)


class _State:
    def __init__(self) -> None:
        self.stack: list[ActiveRun] = []
        self.lock = threading.RLock()
        self.http: LapisHTTP | None = None
        self.conn: Connection | None = None


_state = _State()


def _client() -> LapisHTTP:
    """One keep-alive client per process, rebuilt if the server or token changed."""
    conn = resolve()
    if _state.http is None or _state.conn != conn:
        old = _state.http
        if old is not None and all(run.http is not old for run in _state.stack):
            old.close()
        _state.http = conn.client()
        _state.conn = conn
    return _state.http


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def start_run(
    experiment_name: str | None = None,
    run_name: str | None = None,
    tags: Mapping[str, object] | None = None,
    run_id: str | None = None,
    *,
    experiment_id: str | None = None,
    nested: bool = False,
) -> ActiveRun:
    """Start a run (or attach to ``run_id``) and make it the active one.

    The experiment is ``experiment_name`` (created if missing), else
    ``experiment_id``, else ``LAPIS_EXPERIMENT_NAME`` / ``MLFLOW_EXPERIMENT_NAME``
    / ``MLFLOW_EXPERIMENT_ID``, else the Default experiment.
    """
    with _state.lock:
        parent = _state.stack[-1] if _state.stack else None
        if parent is not None and not nested:
            raise LapisError(
                f"Run {parent.run_id} is already active. End it with lapis.end_run() first, "
                "or start a child run with lapis.start_run(nested=True)."
            )
        http = _client()
        if run_id is None and parent is None:
            run_id = _env("LAPIS_RUN_ID", "MLFLOW_RUN_ID")
        if run_id is not None:
            info = RunInfo.from_json(http.get(f"/api/v1/runs/{run_id}"))
            owned = info.status not in _TERMINAL and not _is_job_run(run_id)
            writer = MetricWriter(http, info.run_id)
            if tags:
                writer.set_tags(tags)
        else:
            body: dict[str, Any] = {"tags": _default_tags(tags, parent)}
            if run_name:
                body["run_name"] = run_name
            name = experiment_name or (None if experiment_id else _env_experiment_name())
            if name:
                body["experiment_name"] = name
            else:
                exp_id = experiment_id or _env("LAPIS_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_ID")
                if exp_id:
                    body["experiment_id"] = str(exp_id)
            info = RunInfo.from_json(http.post("/api/v1/runs", body))
            owned = True
            writer = MetricWriter(http, info.run_id)
        run = ActiveRun(info, http, writer, owned)
        _state.stack.append(run)
        return run


def _env_experiment_name() -> str | None:
    return _env("LAPIS_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_NAME")


def _is_job_run(run_id: str) -> bool:
    return run_id == _env("LAPIS_RUN_ID", "MLFLOW_RUN_ID")


def _default_tags(tags: Mapping[str, object] | None, parent: ActiveRun | None) -> dict[str, str]:
    """MLflow's system tags, so the run looks the same in either UI."""
    out = {str(k): str(v) for k, v in (tags or {}).items()}
    source = sys.argv[0] if sys.argv and sys.argv[0] else "<interactive>"
    out.setdefault("mlflow.source.name", source)
    out.setdefault("mlflow.source.type", "LOCAL")
    if parent is not None:
        out.setdefault("mlflow.parentRunId", parent.run_id)
    return out


def active_run() -> ActiveRun | None:
    """The run logging calls go to, or None."""
    return _state.stack[-1] if _state.stack else None


def _current() -> ActiveRun:
    """The active run, starting one the way MLflow does when code logs without one."""
    stack = _state.stack
    return stack[-1] if stack else start_run()


def end_run(status: str = "FINISHED") -> None:
    """Flush the active run's buffer, then mark it ended. No-op without an active run."""
    if status not in _TERMINAL:
        raise InvalidParameterValue(f"status must be one of {', '.join(_TERMINAL)}: {status!r}")
    run = active_run()
    if run is not None:
        _end(run, status, raise_errors=True)


def _end(run: ActiveRun, status: str, raise_errors: bool) -> None:
    """Flush, then end the run; the run leaves the stack even when the server is unhappy."""
    with _state.lock:
        if run in _state.stack:
            _state.stack.remove(run)
    error: BaseException | None = None
    try:
        run.writer.close()
    except BaseException as exc:
        error = exc
    if run.owned:
        try:
            run.http.post(f"/api/v1/runs/{run.run_id}/end", {"status": status})
            run.info.status = status
        except BaseException as exc:
            error = error or exc
    if error is not None and raise_errors:
        raise error


def flush() -> None:
    """Block until everything logged so far is stored on the server."""
    for run in list(_state.stack):
        run.writer.flush()


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    """Queue one metric point (``step`` defaults to 0, ``timestamp`` to now, in ms)."""
    stack = _state.stack
    (stack[-1] if stack else _current()).writer.log_metric(key, value, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    _current().writer.log_metrics(metrics, step)


def log_param(key: str, value: object) -> object:
    _current().writer.log_params({key: value})
    return value


def log_params(params: Mapping[str, object]) -> None:
    _current().writer.log_params(params)


def set_tag(key: str, value: object) -> None:
    _current().writer.set_tags({key: value})


def set_tags(tags: Mapping[str, object]) -> None:
    _current().writer.set_tags(tags)


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Upload one file under the run's artifacts (streamed, never read whole)."""
    run = _current()
    upload_file(run.http, run.info.artifact_uri, Path(local_path), artifact_path)


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Upload every file below ``local_dir``, keeping the folder structure."""
    run = _current()
    upload_dir(run.http, run.info.artifact_uri, Path(local_dir), artifact_path)


def _at_exit() -> None:
    """End what the script left open: FAILED after an uncaught exception, else FINISHED."""
    failed = getattr(sys, "last_value", None) is not None
    for run in reversed(list(_state.stack)):
        try:
            _end(run, "FAILED" if failed else "FINISHED", raise_errors=True)
        except Exception as exc:
            print(f"lapis: ending run {run.run_id} failed: {exc}", file=sys.stderr)


atexit.register(_at_exit)
