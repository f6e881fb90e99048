"""``MLClient``: the azure-ai-ml-shaped entry point, with jobs, compute and environments.

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
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import yaml

from lapis.errors import InvalidParameterValue, ResourceDoesNotExist
from lapis.sdk import jobs as sdk_jobs
from lapis.sdk.assets import AmlCompute, ComputeInstance, Data, Environment
from lapis.sdk.connection import LapisHTTP, resolve
from lapis.sdk.endpoints import (
    BatchDeploymentOperations,
    BatchEndpointOperations,
    OnlineDeploymentOperations,
    OnlineEndpointOperations,
)
from lapis.sdk.entities import CommandJob
from lapis.sdk.models import ModelOperations
from lapis.sdk.views import Compute, Job, Poller, poll_until
from lapis.specs.yaml_lines import read_text_file, safe_load

_STABLE_COMPUTE = {"Running", "Stopped", "Failed"}


def _read(path: Path, what: str) -> str:
    return read_text_file(path, what)


def _name(item: str | Job | Compute | Environment) -> str:
    return item if isinstance(item, str) else str(item.name)


def _q(name: str) -> str:
    return quote(name, safe="")


def _jsonable(value: Any) -> Any:
    """YAML timestamps (a schedule's start_time) as ISO text, the way JSON carries them."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


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


class JobOperations:
    """``client.jobs``: submit, follow, inspect, cancel and download command jobs."""

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def _job(self, raw: dict[str, Any]) -> Job:
        return Job._from(raw, self._http.url)

    def create_or_update(
        self,
        job: CommandJob | dict[str, Any] | str | Path,
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
        if isinstance(job, (str, Path)):
            path = Path(job).expanduser()
            text = _read(path, "job file")
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
        return self._job(self._http.get(f"/api/v1/jobs/{_q(name)}"))

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

        return self._job(sdk_jobs.stream(self._http, _name(name), target, on_status))

    def cancel(self, name: str | Job) -> Job:
        """Cancel: a queued job never starts; a running one has its process tree ended."""
        return self._job(self._http.post(f"/api/v1/jobs/{_q(_name(name))}/cancel"))

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
        return sdk_jobs.download(self._http, _name(name), Path(download_path), output_name)


class ComputeOperations:
    """``client.compute``: compute instances and ``local``.

    ``begin_*`` return a ``Poller`` whose ``result()`` waits until the compute
    is Running, Stopped or Failed (azure-ai-ml's convention); the plain verbs
    (``start``…) return at once, or wait with ``wait=True``.
    """

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def _path(self, name: str | Compute) -> str:
        return f"/api/v1/computes/{_q(_name(name))}"

    def _compute(self, raw: dict[str, Any]) -> Compute:
        return Compute._from(raw, self._http.url)

    def create_or_update(
        self,
        compute: ComputeInstance | AmlCompute | dict[str, Any] | str | Path,
        *,
        wait: bool = False,
    ) -> Compute:
        """Create an instance from its entity, document or YAML file; an existing one is
        updated (description, tags, idle shutdown, schedules). ``wait``: until Running,
        Stopped or Failed."""
        if isinstance(compute, (str, Path)):
            path = Path(compute).expanduser()
            doc, source = _compute_file(path), str(path)
        elif isinstance(compute, (ComputeInstance, AmlCompute)):
            doc, source = _jsonable(compute._document()), "<sdk>"
        else:
            doc, source = _jsonable(dict(compute)), "<sdk>"
        name = doc.get("name")
        if name and self._exists(str(name)):
            body = {k: v for k, v in doc.items() if k != "type"}
            c = self._http.request(
                "PATCH", self._path(str(name)), json_body={**body, "source": source}
            ).json()
        else:
            c = self._http.post("/api/v1/computes", {**doc, "source": source})
        return self._wait(c["name"]) if wait else self._compute(c)

    def get(self, name: str) -> Compute:
        return self._compute(self._http.get(self._path(name)))

    def _exists(self, name: str) -> bool:
        try:
            self._http.get(self._path(name))
        except ResourceDoesNotExist:
            return False
        return True

    def list(self) -> list[Compute]:
        return [self._compute(c) for c in self._http.get("/api/v1/computes")["computes"]]

    def start(self, name: str | Compute, *, wait: bool = False) -> Compute:
        return self._verb(name, "start", wait)

    def stop(self, name: str | Compute, *, wait: bool = False) -> Compute:
        """Stop taking jobs: running ones finish, queued ones wait for the next start."""
        return self._verb(name, "stop", wait)

    def restart(self, name: str | Compute, *, wait: bool = False) -> Compute:
        return self._verb(name, "restart", wait)

    def _poller(self, first: Compute) -> Poller[Compute]:
        return Poller(
            first,
            lambda t: self._wait(first.name, 300.0 if t is None else t),
            state=lambda c: "Failed" if c.state == "Failed" else c.provisioning_state,
            reason=lambda c: c.state_reason,
        )

    def begin_create_or_update(
        self, compute: ComputeInstance | AmlCompute | dict[str, Any] | str | Path
    ) -> Poller[Compute]:
        return self._poller(self.create_or_update(compute))

    def begin_start(self, name: str | Compute) -> Poller[Compute]:
        return self._poller(self.start(name))

    def begin_stop(self, name: str | Compute) -> Poller[Compute]:
        return self._poller(self.stop(name))

    def begin_restart(self, name: str | Compute) -> Poller[Compute]:
        return self._poller(self.restart(name))

    def delete(self, name: str | Compute) -> dict[str, Any]:
        """Delete an instance with no running or queued job."""
        result: dict[str, Any] = self._http.request("DELETE", self._path(name)).json()
        return result

    def begin_delete(self, name: str | Compute) -> Poller[dict[str, Any]]:
        return Poller(self.delete(name))

    def list_sizes(self) -> builtins.list[dict[str, Any]]:
        """The VM size catalogue: what fits this host and the quota left per family."""
        sizes: builtins.list[dict[str, Any]] = self._http.get("/api/v1/compute-sizes")["sizes"]
        return sizes

    def _verb(self, name: str | Compute, verb: str, wait: bool) -> Compute:
        c = self._http.post(f"{self._path(name)}/{verb}")
        return self._wait(c["name"]) if wait else self._compute(c)

    def _wait(self, name: str, timeout: float = 300.0) -> Compute:
        return poll_until(lambda: self.get(name), lambda c: c.state in _STABLE_COMPUTE, timeout)


def _compute_file(path: Path) -> dict[str, Any]:
    """A compute YAML checked here first, so a mistake names its file and line."""
    from lapis.specs.compute import parse_compute  # light, but only needed here
    from lapis.specs.yaml_lines import load

    loc = load(_read(path, "compute file"), str(path))
    parse_compute(loc, partial=True)
    if not isinstance(loc.data, dict):
        raise InvalidParameterValue(f"{path}: must be a mapping of compute settings")
    return dict(_jsonable(loc.data))


class EnvironmentOperations:
    """``client.environments``: register and look up environment versions."""

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def _env(self, raw: dict[str, Any]) -> Environment:
        return Environment._from(raw, self._http.url)

    def create_or_update(
        self, environment: Environment | dict[str, Any] | str | Path
    ) -> Environment:
        """Register a version from an ``Environment``, a document or a YAML file (the
        next integer unless given).

        A ``conda_file`` given as a path is read here (relative to the YAML file, or to
        the current directory for a dict) and sent inlined: the server never reads
        the caller's files.
        """
        if isinstance(environment, (str, Path)):
            path = Path(environment).expanduser()
            text = _read(path, "environment file")
            data = safe_load(text, str(path))
            conda = _conda_text(data.get("conda_file") if isinstance(data, dict) else None, path)
            body: dict[str, Any] = {
                "yaml": text,
                "source": path.name,
                "overrides": {"conda_file": conda},
            }
        elif isinstance(environment, Environment):
            body = {"doc": environment._document(), "source": "<sdk>"}
        else:
            doc = dict(environment)
            conda = _conda_text(doc.get("conda_file"), Path.cwd() / "<sdk>")
            if conda is not None:
                doc["conda_file"] = conda
            body = {"doc": doc, "source": "<sdk>"}
        return self._env(self._http.post("/api/v1/environments", body))

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Environment:
        """One version: ``version`` exactly, else ``label`` (only ``latest``), else the latest."""
        if version is not None and label is not None:
            raise InvalidParameterValue("give either version or label, not both")
        if label is not None and label != "latest":
            raise InvalidParameterValue(f"Unknown label '{label}': only 'latest' is supported")
        ref = version or "latest"
        return self._env(self._http.get(f"/api/v1/environments/{_q(name)}/versions/{_q(str(ref))}"))

    def list(self, name: str | None = None) -> list[Environment]:
        """The latest version of every environment, or every version of ``name``."""
        path = f"/api/v1/environments/{_q(name)}/versions" if name else "/api/v1/environments"
        return [self._env(e) for e in self._http.get(path)["environments"]]

    def archive(self, name: str, version: str) -> Environment:
        """Hide a version from listings and ``@latest``."""
        return self._env(
            self._http.post(f"/api/v1/environments/{_q(name)}/versions/{_q(version)}/archive")
        )


def _conda_text(raw: Any, anchor: Path) -> str | None:
    """The conda file's text when it is named by path (relative to ``anchor``'s folder)."""
    if not isinstance(raw, str) or "\n" in raw.strip():
        return None
    target = (anchor.parent / raw).expanduser().resolve()
    if not target.is_file():
        raise InvalidParameterValue(f"{anchor.name}: conda_file: file not found: {target}")
    return target.read_text()


class DataOperations:
    """``client.data``: registered data assets come with datastores (a later release).

    Until then a job takes the path itself: ``Input(type=AssetTypes.URI_FOLDER,
    path="./data")``, or a ``Data`` entity given as the input (its path is used).
    """

    _WHY = (
        "data assets come with datastores, which this Lapis release does not have yet; "
        "give the data's path as a job input instead (Input(type=..., path=...), or the "
        "Data object itself)"
    )

    def create_or_update(self, data: Data) -> Data:
        raise InvalidParameterValue(f"cannot register data asset '{data.name}': {self._WHY}")

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Data:
        raise ResourceDoesNotExist(f"data asset '{name}': {self._WHY}")

    def list(self, name: str | None = None) -> builtins.list[Data]:
        return []


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
        self.data = DataOperations()

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
