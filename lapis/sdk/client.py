"""``MLClient``: the azure-ai-ml-shaped entry point, and its jobs operations.

Compute, environments and data live in ``compute_ops`` and ``environment_ops``,
models in ``models``, serving in ``endpoints``.

Each operation group is a thin layer over the REST API under ``/api/v1`` (the
same calls the CLI makes) and returns view objects from ``lapis.sdk.entities``.
Jobs built with ``command(...)`` become a YAML document and go through
``prepare_submission``, so the server validates them exactly like a job file;
a mistake raises ``InvalidParameterValue`` naming the line and key.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml

from lapis.errors import InvalidParameterValue, ResourceDoesNotExist
from lapis.sdk import jobs as sdk_jobs
from lapis.sdk.components import ComponentOperations
from lapis.sdk.compute_ops import ComputeOperations
from lapis.sdk.connection import LapisHTTP, resolve
from lapis.sdk.datastores import DatastoreOperations
from lapis.sdk.dsl import PipelineJob
from lapis.sdk.endpoints import (
    BatchDeploymentOperations,
    BatchEndpointOperations,
    OnlineDeploymentOperations,
    OnlineEndpointOperations,
)
from lapis.sdk.entities import CommandJob
from lapis.sdk.environment_ops import DataOperations, EnvironmentOperations
from lapis.sdk.helpers import name_of, q, read
from lapis.sdk.models import ModelOperations
from lapis.sdk.schedules import ScheduleOperations
from lapis.sdk.views import Job, Poller, poll_until

_SDK_LINE = re.compile(r"^<sdk>:(\d+): (.*)$", re.DOTALL)


def _explain(exc: InvalidParameterValue, text: str) -> InvalidParameterValue:
    """``<sdk>:7: …`` points into a document the user never saw: show them that line."""
    m = _SDK_LINE.match(exc.message)
    if m is None:
        return exc
    number = int(m[1])
    lines = text.splitlines()
    shown = lines[number - 1].strip() if 0 < number <= len(lines) else ""
    where = f"<sdk> job, line {number} of its YAML document" + (f" ({shown})" if shown else "")
    err = type(exc)(f"{where}: {m[2]}", **exc.details)
    err.status_code = getattr(exc, "status_code", None)  # type: ignore[attr-defined]
    return err


def _pipeline_body(
    http: LapisHTTP,
    job: PipelineJob,
    experiment_name: str | None,
    compute: str | None,
    display_name: str | None,
) -> dict[str, Any]:
    """A ``@pipeline`` job as the YAML text it stands for, prepared as a file would be."""
    from lapis.sdk.pipelines import prepare_pipeline

    doc = job._to_dict()
    if experiment_name:
        doc["experiment_name"] = experiment_name
    if display_name:
        doc["display_name"] = display_name
    if compute:
        doc.setdefault("settings", {})["default_compute"] = compute
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    try:
        return prepare_pipeline(http, text, "<sdk>", job._base_dir)
    except InvalidParameterValue as exc:
        raise _explain(exc, text) from None


class JobOperations:
    """``client.jobs``: submit, follow, inspect, cancel and download command jobs."""

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def _job(self, raw: dict[str, Any]) -> Job:
        return Job._from(raw, self._http.url)

    def create_or_update(
        self,
        job: CommandJob | PipelineJob | dict[str, Any] | str | Path,
        *,
        experiment_name: str | None = None,
        compute: str | None = None,
        display_name: str | None = None,
    ) -> Job:
        """Submit a ``command(...)`` job, a job document (dict) or a job YAML file.

        Relative paths in a ``CommandJob`` or dict are taken from the current
        directory; in a file, from the file's folder (as ``az ml job create``).
        """
        overrides = [
            f"{key}={json.dumps(value)}"  # JSON is YAML: the value stays a string
            for key, value in (
                ("experiment_name", experiment_name),
                ("compute", compute),
                ("display_name", display_name),
            )
            if value is not None
        ]
        if isinstance(job, PipelineJob):  # built with @pipeline (lapis/sdk/dsl.py)
            return self._job(self._http.post("/api/v1/jobs", _pipeline_body(
                self._http, job, experiment_name, compute, display_name)))  # fmt: skip
        if isinstance(job, (str, Path)):
            path = Path(job).expanduser()
            text = read(path, "job file")
            body = sdk_jobs.prepare_submission(self._http, text, str(path), path.parent, overrides)
        else:
            base_dir = Path.cwd()
            doc = job.to_dict(base_dir) if isinstance(job, CommandJob) else job
            text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
            try:
                body = sdk_jobs.prepare_submission(self._http, text, "<sdk>", base_dir, overrides)
                return self._job(self._http.post("/api/v1/jobs", body))
            except InvalidParameterValue as exc:
                raise _explain(exc, text) from None
        return self._job(self._http.post("/api/v1/jobs", body))

    def get(self, name: str) -> Job:
        return self._job(self._http.get(f"/api/v1/jobs/{q(name)}"))

    def list(
        self,
        *,
        status: str | list[str] | None = None,
        compute: str | None = None,
        experiment_name: str | None = None,
        max_results: int = 50,
    ) -> list[Job]:
        """Jobs, newest first; ``status`` may be one status or several."""
        if isinstance(status, list):
            status = ",".join(status)
        jobs = self._http.get(
            "/api/v1/jobs",
            status=status,
            compute=compute,
            experiment_name=experiment_name,
            max_results=max_results,
        )["jobs"]
        return [self._job(j) for j in jobs]

    def stream(self, name: str | Job, out: TextIO | None = None) -> Job:
        """Print the job's log as it is written until the job ends; return the final job."""
        target = out or sys.stdout

        def on_status(status: str, reason: str | None) -> None:
            target.write(f"[{status}]" + (f" {reason}" if reason else "") + "\n")

        return self._job(sdk_jobs.stream(self._http, name_of(name), target, on_status))

    def cancel(self, name: str | Job) -> Job:
        """Cancel: a queued job never starts; a running one has its process tree ended."""
        return self._job(self._http.post(f"/api/v1/jobs/{q(name_of(name))}/cancel"))

    def begin_cancel(self, name: str | Job) -> Poller[Job]:
        """azure-ai-ml's spelling: ``result()`` waits until the job has stopped."""
        first = self.cancel(name)
        return Poller(
            first,
            lambda t: poll_until(lambda: self.get(first.name), lambda j: j.terminal, t),
            state=lambda j: "Succeeded" if j.terminal else "Running",
        )

    def download(
        self,
        name: str | Job,
        download_path: str | Path = ".",
        output_name: str | None = None,
    ) -> builtins.list[Path]:
        """Azure's layout: ``artifacts/`` and ``named-outputs/<name>/`` under ``download_path``."""
        return sdk_jobs.download(self._http, name_of(name), Path(download_path), output_name)


def find_config(path: str | Path | None = None, file_name: str | None = None) -> Path:
    """The config file: ``path`` itself, or the first ``config.json`` (or ``file_name``)
    in ``path``'s folder or a folder above it, directly or under ``.azureml/``."""
    name = file_name or "config.json"
    start = Path(path).expanduser().resolve() if path is not None else Path.cwd()
    if start.is_file():
        return start
    for folder in (start, *start.parents):
        for candidate in (folder / name, folder / ".azureml" / name):
            if candidate.is_file():
                return candidate
    raise ResourceDoesNotExist(
        f"no {name} in {start} or the folders above it (nor in their .azureml/); "
        "write one with `lapis auth config-file`"
    )


class MLClient:
    """A handle on one Lapis workspace server.

    ``MLClient(url, token)`` names the server; ``MLClient()`` or
    ``MLClient.from_home()`` finds it as the CLI does (``LAPIS_URL`` and
    ``LAPIS_TOKEN``, else the workspace home's ``server.json``).
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        home: Path | None = None,
        http: LapisHTTP | None = None,
    ) -> None:
        if http is None:
            if url is None:
                conn = resolve(home=home, prefer_home=home is not None)
                http = LapisHTTP(conn.url, token or conn.token, source=conn.source)
            else:
                http = LapisHTTP(url, token, source="MLClient")
        self._http = http
        self.jobs = JobOperations(http)
        self.compute = ComputeOperations(http)
        self.environments = EnvironmentOperations(http)
        self.models = ModelOperations(http)
        self.online_endpoints = OnlineEndpointOperations(http)
        self.online_deployments = OnlineDeploymentOperations(http)
        self.batch_endpoints = BatchEndpointOperations(http)
        self.batch_deployments = BatchDeploymentOperations(http)
        self.data = DataOperations(http)
        self.components = ComponentOperations(http)
        self.schedules = ScheduleOperations(http)
        self.datastores = DatastoreOperations(http)

    @classmethod
    def from_config(
        cls,
        credential: Any = None,
        *,
        path: str | Path | None = None,
        file_name: str | None = None,
        **_azure: Any,
    ) -> MLClient:
        """The workspace named by a ``config.json``, found as azure-ai-ml finds it.

        ``path`` is the file or the folder to start from (default: the current
        folder); each folder up to the root is searched for ``config.json`` (or
        ``file_name``), also under ``.azureml/``. The file names the server:
        ``{"url": "http://HOST:PORT"}`` (``lapis auth config-file`` writes one),
        optionally ``"token"``, or ``{"home": "/path/to/workspace"}``. Without a
        token in the file, ``LAPIS_TOKEN`` or the local workspace's credentials
        are used. ``credential`` and Azure's other arguments are accepted and
        ignored, so Azure code keeps its shape.
        """
        found = find_config(path, file_name)
        data = json.loads(found.read_text())
        if not isinstance(data, dict):
            raise InvalidParameterValue(f"{found}: must be a JSON object")
        if data.get("home"):
            return cls(home=Path(str(data["home"])).expanduser())
        url = data.get("url") or data.get("lapis_url")
        if not url:
            azure = data.get("workspace_name") or data.get("subscription_id")
            raise InvalidParameterValue(
                f"{found}: "
                + (f"an Azure ML workspace config ('{azure}'); " if azure else "")
                + 'add "url": "http://HOST:PORT" naming the Lapis server (or "home": a '
                "workspace folder); `lapis auth config-file` writes one"
            )
        token = data.get("token")
        if token is None:
            conn = resolve(env={**os.environ, "LAPIS_URL": str(url)})
            token = conn.token
        return cls(str(url).rstrip("/"), token)

    @classmethod
    def from_home(cls, home: str | Path | None = None) -> MLClient:
        """The server of a workspace home (``LAPIS_HOME`` or ``~/.lapis`` when not given)."""
        return cls(home=Path(home) if home is not None else None)

    @property
    def url(self) -> str:
        return self._http.url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MLClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MLClient(url={self.url!r})"
