"""``client.online_endpoints``, ``client.online_deployments``, ``client.batch_endpoints``,
``client.batch_deployments``: serving from Python, in azure-ai-ml's shape.

Long operations follow azure-ai-ml's ``begin_*`` convention and return a
:class:`Poller` whose ``result()`` waits: a deployment is ``Creating`` until
its instances answer their readiness probe, which can take a while for a
large model, and a notebook should be able to start several and wait later.

Documents are given as YAML files (the same ones the CLI takes), as plain
dicts in Azure's YAML shape, or as the small entity classes below. Scoring
(``invoke``) uses the endpoint's key, fetched here, never the user's token:
it is the same request any outside caller makes.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lapis.errors import InvalidParameterValue, LapisError
from lapis.sdk.connection import LapisHTTP
from lapis.sdk.entities import Job
from lapis.sdk.serving import (
    FINAL,
    deployment_path,
    load_deployment,
    prepare_batch_deployment,
    prepare_deployment,
    read_yaml,
    wait_deployment,
)
from lapis.specs.yaml_lines import Located, located


def _q(name: str) -> str:
    return quote(name, safe="")


class Poller:
    """A started long operation: ``result()`` waits for it, ``done()`` asks without waiting."""

    def __init__(
        self, first: dict[str, Any], wait: Callable[[float | None], dict[str, Any]]
    ) -> None:
        self._last = first
        self._wait = wait

    def done(self) -> bool:
        return self._last.get("provisioning_state", "Succeeded") in FINAL

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        """The final state; a deployment that ends ``Failed`` raises with its reason."""
        if not self.done():
            self._last = self._wait(timeout)
        if self._last.get("provisioning_state") == "Failed":
            raise LapisError(
                f"{self._last.get('name')} failed: {self._last.get('state_reason') or 'see logs'}"
            )
        return self._last


# --- entities ------------------------------------------------------------------------
def _doc(obj: Any) -> dict[str, Any]:
    return {k: v for k, v in asdict(obj).items() if v not in (None, {}, [])}


@dataclass
class ManagedOnlineEndpoint:
    name: str
    auth_mode: str = "key"
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)


@dataclass
class CodeConfiguration:
    code: str
    scoring_script: str


@dataclass
class ManagedOnlineDeployment:
    """``model`` is ``azureml:NAME:VERSION`` (or ``NAME@latest``); ``environment`` as in jobs."""

    name: str
    endpoint_name: str
    model: str | dict[str, Any]
    code_configuration: CodeConfiguration | None = None
    environment: str | dict[str, Any] | None = None
    instance_type: str | None = None
    instance_count: int = 1
    environment_variables: dict[str, str] = field(default_factory=dict)
    request_settings: dict[str, Any] = field(default_factory=dict)
    liveness_probe: dict[str, Any] = field(default_factory=dict)
    readiness_probe: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class BatchEndpoint:
    name: str
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def _located(document: Any, what: str) -> Located:
    """A YAML file, dict or entity as a located document (dicts report as ``<sdk>``)."""
    if isinstance(document, (str, Path)):
        return read_yaml(Path(document).expanduser())
    if hasattr(document, "__dataclass_fields__"):
        document = _doc(document)
    if not isinstance(document, Mapping):
        raise InvalidParameterValue(f"{what} must be a YAML path, a dict or an entity")
    return located(dict(document), "<sdk>")


# --- online ---------------------------------------------------------------------------
class OnlineEndpointOperations:
    """``client.online_endpoints``."""

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def _path(self, name: str) -> str:
        return f"/api/v1/endpoints/{_q(name)}"

    def begin_create_or_update(self, endpoint: Any) -> Poller:
        """Create the endpoint, or update an existing one (traffic, tags, description…)."""
        loc = _located(endpoint, "endpoint")
        doc = {**dict(loc.data), "source": loc.source}
        name = str(doc.get("name") or "")
        if name and self._http.exists(self._path(name)):
            result = self._http.request("PATCH", self._path(name), json_body=doc).json()
        else:
            result = self._http.post("/api/v1/endpoints", doc)
        return Poller(result, lambda _t: result)

    def get(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self._http.get(self._path(name))
        return found

    def list(self) -> builtins.list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._http.get("/api/v1/endpoints")["endpoints"]
        return found

    def get_keys(self, name: str) -> dict[str, str]:
        """``{"primaryKey", "secondaryKey"}``, as Azure's get-credentials returns them."""
        keys: dict[str, str] = self._http.post(f"{self._path(name)}/listKeys")
        return keys

    def begin_regenerate_keys(self, name: str, key_type: str = "primary") -> Poller:
        """Replace one key; ``result()`` is the pair of keys now in force."""
        self._http.post(f"{self._path(name)}/regenerateKeys", {"keyType": key_type})
        keys = self.get_keys(name)
        return Poller(keys, lambda _t: keys)

    def begin_delete(self, name: str) -> Poller:
        result = self._http.request("DELETE", self._path(name)).json()
        return Poller(result, lambda _t: result)

    def invoke(
        self,
        endpoint_name: str,
        request_file: str | Path | None = None,
        deployment_name: str | None = None,
        *,
        request: Any = None,
    ) -> str:
        """Score a request with the endpoint key; the response body as text, like Azure's.

        Give ``request_file`` (a JSON file) or ``request`` (any JSON-able value).
        A non-2xx answer raises with the status, the error and the request id.
        """
        if (request_file is None) == (request is None):
            raise InvalidParameterValue("give either request_file or request")
        body = (
            Path(request_file).expanduser().read_bytes()
            if request_file is not None
            else json.dumps(request).encode()
        )
        key = self.get_keys(endpoint_name)["primaryKey"]
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        if deployment_name:
            headers["azureml-model-deployment"] = deployment_name
        resp = self._http._client.post(
            f"{self._path(endpoint_name)}/score", content=body, headers=headers
        )
        if resp.status_code >= 300:
            try:
                detail = resp.json()
            except ValueError:
                detail = {"error": resp.text[:500]}
            rid = detail.get("request_id") or resp.headers.get("x-request-id") or "-"
            raise LapisError(
                f"scoring '{endpoint_name}' answered {resp.status_code}: "
                f"{detail.get('error') or detail.get('message')} (request id {rid})"
            )
        return resp.text


class OnlineDeploymentOperations:
    """``client.online_deployments``."""

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def begin_create_or_update(
        self, deployment: Any, *, all_traffic: bool = False, base_dir: str | Path | None = None
    ) -> Poller:
        """Create or update (rolling instances over) a deployment; ``result()`` waits for it.

        Relative paths (code, inline model, conda file) are resolved against the
        YAML file's folder, or ``base_dir`` (default: the current folder) for a dict.
        """
        loc, endpoint = load_deployment(_located(deployment, "deployment"))
        base = Path(base_dir) if base_dir is not None else None
        if base is None and loc.source == "<sdk>":
            base = Path.cwd()
        body = prepare_deployment(self._http, loc, endpoint, base)
        name = str(body["name"])
        if self._http.exists(deployment_path(endpoint, name)):
            first = self._http.request(
                "PATCH", deployment_path(endpoint, name), json_body=body
            ).json()
        else:
            if all_traffic:
                body["all_traffic"] = True
            first = self._http.post(deployment_path(endpoint), body)
        return Poller(first, lambda t: wait_deployment(self._http, endpoint, name, timeout=t))

    def get(self, name: str, endpoint_name: str) -> dict[str, Any]:
        found: dict[str, Any] = self._http.get(deployment_path(endpoint_name, name))
        return found

    def list(self, endpoint_name: str) -> builtins.list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._http.get(deployment_path(endpoint_name))["deployments"]
        return found

    def get_logs(
        self, name: str, endpoint_name: str, lines: int = 200, instance: int | None = None
    ) -> str:
        """The deployment log and its instances' output (the last ``lines`` of each)."""
        found = self._http.get(
            f"{deployment_path(endpoint_name, name)}/logs", lines=lines, instance=instance
        )
        return str(found["log"])

    def begin_delete(self, name: str, endpoint_name: str) -> Poller:
        result = self._http.request("DELETE", deployment_path(endpoint_name, name)).json()
        return Poller(result, lambda _t: result)


# --- batch ----------------------------------------------------------------------------
class BatchEndpointOperations:
    """``client.batch_endpoints``: each ``invoke`` is a job (``client.jobs.stream`` it)."""

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def _path(self, name: str) -> str:
        return f"/api/v1/batchEndpoints/{_q(name)}"

    def begin_create_or_update(self, endpoint: Any) -> Poller:
        loc = _located(endpoint, "batch endpoint")
        doc = {**dict(loc.data), "source": loc.source}
        name = str(doc.get("name") or "")
        if name and self._http.exists(self._path(name)):
            result = self._http.request("PATCH", self._path(name), json_body=doc).json()
        else:
            result = self._http.post("/api/v1/batchEndpoints", doc)
        return Poller(result, lambda _t: result)

    def get(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self._http.get(self._path(name))
        return found

    def list(self) -> builtins.list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._http.get("/api/v1/batchEndpoints")["endpoints"]
        return found

    def invoke(
        self, endpoint_name: str, input: str | Path, deployment_name: str | None = None
    ) -> Job:
        """Score every file of a local folder; the scoring job (predictions in output ``score``)."""
        folder = Path(input).expanduser().resolve()
        if not folder.is_dir():
            raise InvalidParameterValue(f"input {input}: not a folder")
        body: dict[str, Any] = {"input": str(folder)}
        if deployment_name:
            body["deployment_name"] = deployment_name
        return Job._from(self._http.post(f"{self._path(endpoint_name)}/invoke", body))

    def list_jobs(self, endpoint_name: str, max_results: int = 50) -> builtins.list[Job]:
        found = self._http.get(f"{self._path(endpoint_name)}/jobs", max_results=max_results)
        return [Job._from(j) for j in found["jobs"]]

    def begin_delete(self, name: str) -> Poller:
        result = self._http.request("DELETE", self._path(name)).json()
        return Poller(result, lambda _t: result)


class BatchDeploymentOperations:
    """``client.batch_deployments``: the code folder is uploaded and frozen at create."""

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def begin_create_or_update(
        self, deployment: Any, *, set_default: bool = False, base_dir: str | Path | None = None
    ) -> Poller:
        loc = _located(deployment, "batch deployment")
        base = Path(base_dir) if base_dir is not None else None
        if base is None and loc.source == "<sdk>":
            base = Path.cwd()
        body, endpoint = prepare_batch_deployment(self._http, loc, None, base)
        body["set_default"] = set_default
        path = f"/api/v1/batchEndpoints/{_q(endpoint)}/deployments"
        name = str(body.get("name") or "")
        if name and self._http.exists(f"{path}/{_q(name)}"):
            result = self._http.request("PUT", f"{path}/{_q(name)}", json_body=body).json()
        else:
            result = self._http.post(path, body)
        return Poller(result, lambda _t: result)

    def get(self, name: str, endpoint_name: str) -> dict[str, Any]:
        found: dict[str, Any] = self._http.get(
            f"/api/v1/batchEndpoints/{_q(endpoint_name)}/deployments/{_q(name)}"
        )
        return found

    def list(self, endpoint_name: str) -> builtins.list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._http.get(
            f"/api/v1/batchEndpoints/{_q(endpoint_name)}/deployments"
        )["deployments"]
        return found
