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
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from lapis.errors import InvalidParameterValue, LapisError
from lapis.sdk.assets import Data
from lapis.sdk.connection import LapisHTTP
from lapis.sdk.entities import Input, Job
from lapis.sdk.serving import (
    deployment_path,
    load_deployment,
    prepare_batch_deployment,
    prepare_deployment,
    read_yaml,
    wait_deployment,
)
from lapis.sdk.serving_entities import (
    BatchDeployment,
    BatchEndpoint,
    CodeConfiguration,
    EndpointAuthKeys,
    EndpointAuthToken,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    ModelBatchDeployment,
)
from lapis.sdk.views import Poller, _View
from lapis.specs.batch import DEPLOYMENT_KEYS, SETTINGS_KEYS
from lapis.specs.yaml_lines import Located, located

T = TypeVar("T")


def _q(name: str) -> str:
    return quote(name, safe="")


def _located(document: Any, what: str) -> Located:
    """A YAML file, dict or entity as a located document (dicts report as ``<sdk>``)."""
    if isinstance(document, (str, Path)):
        return read_yaml(Path(document).expanduser())
    if isinstance(document, _View):
        document = document._document()
    if not isinstance(document, Mapping):
        raise InvalidParameterValue(f"{what} must be a YAML path, a dict or an entity")
    return located(dict(document), "<sdk>")


def _provisioning(value: Any) -> str:
    return str(value.get("provisioning_state") or "Succeeded")


def _reason(value: Any) -> str | None:
    reason = value.get("state_reason")
    return None if reason is None else str(reason)


def _done(value: T) -> Poller[T]:
    return Poller(value)


# --- online ---------------------------------------------------------------------------
class OnlineEndpointOperations:
    """``client.online_endpoints``."""

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def _path(self, name: str) -> str:
        return f"/api/v1/endpoints/{_q(name)}"

    def _entity(self, raw: dict[str, Any]) -> ManagedOnlineEndpoint:
        return ManagedOnlineEndpoint._from(raw, self._http.url)

    def begin_create_or_update(self, endpoint: Any) -> Poller[ManagedOnlineEndpoint]:
        """Create the endpoint, or update an existing one (traffic, tags, description…).

        An endpoint the server answered and the caller changed (``e.traffic = …``)
        sends just what changed.
        """
        if isinstance(endpoint, ManagedOnlineEndpoint) and endpoint._answered:
            doc: dict[str, Any] = {"name": endpoint.name, **endpoint._changes()}
        else:
            loc = _located(endpoint, "endpoint")
            doc = {**dict(loc.data), "source": loc.source}
        name = str(doc.get("name") or "")
        if name and self._http.exists(self._path(name)):
            result = self._http.request("PATCH", self._path(name), json_body=doc).json()
        else:
            result = self._http.post("/api/v1/endpoints", doc)
        return _done(self._entity(result))

    def get(self, name: str) -> ManagedOnlineEndpoint:
        return self._entity(self._http.get(self._path(name)))

    def list(self) -> builtins.list[ManagedOnlineEndpoint]:
        return [self._entity(e) for e in self._http.get("/api/v1/endpoints")["endpoints"]]

    def get_keys(self, name: str) -> EndpointAuthKeys | EndpointAuthToken:
        """The keys (``primary_key``, ``secondary_key``; ``["primaryKey"]`` as Azure's
        get-credentials JSON), or for an ``aml_token`` endpoint a fresh token."""
        answer = self._http.post(f"{self._path(name)}/listKeys")
        if "accessToken" in answer:
            return EndpointAuthToken._from(answer)
        return EndpointAuthKeys._from(answer)

    def begin_regenerate_keys(
        self, name: str, key_type: str = "primary"
    ) -> Poller[EndpointAuthKeys | EndpointAuthToken]:
        """Replace one key; ``result()`` is the pair of keys now in force."""
        self._http.post(f"{self._path(name)}/regenerateKeys", {"keyType": key_type})
        return _done(self.get_keys(name))

    def begin_delete(self, name: str) -> Poller[dict[str, Any]]:
        return _done(self._http.request("DELETE", self._path(_named(name))).json())

    def _credential(self, endpoint_name: str) -> str:
        found = self.get_keys(endpoint_name)
        if isinstance(found, EndpointAuthToken):
            return str(found.access_token)
        return str(found.primary_key)

    def invoke(
        self,
        endpoint_name: str,
        request_file: str | Path | None = None,
        deployment_name: str | None = None,
        *,
        request: Any = None,
    ) -> str:
        """Score a request with the endpoint's key or token; the response body as text.

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
        headers = {
            "Authorization": f"Bearer {self._credential(endpoint_name)}",
            "Content-Type": "application/json",
        }
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


def _named(item: Any) -> str:
    return str(item.name) if isinstance(item, _View) else str(item)


class OnlineDeploymentOperations:
    """``client.online_deployments``."""

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def _entity(self, raw: dict[str, Any]) -> ManagedOnlineDeployment:
        return ManagedOnlineDeployment._from(raw, self._http.url)

    def begin_create_or_update(
        self, deployment: Any, *, all_traffic: bool = False, base_dir: str | Path | None = None
    ) -> Poller[ManagedOnlineDeployment]:
        """Create or update (rolling instances over) a deployment; ``result()`` waits for it.

        Relative paths (code, inline model, conda file) are resolved against the
        YAML file's folder, or ``base_dir`` (default: the current folder) for a dict
        or an entity. A deployment the server answered, changed by the caller
        (``d.instance_count = 2``), sends just what changed.
        """
        if isinstance(deployment, ManagedOnlineDeployment) and deployment._answered:
            first = self._update_answered(deployment, base_dir)
        else:
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
        endpoint, name = str(first["endpoint_name"]), str(first["name"])
        return Poller(
            self._entity(first),
            lambda t: self._entity(wait_deployment(self._http, endpoint, name, timeout=t)),
            state=_provisioning,
            reason=_reason,
        )

    def _update_answered(
        self, d: ManagedOnlineDeployment, base_dir: str | Path | None
    ) -> dict[str, Any]:
        changes = d._changes()
        body: dict[str, Any] = {"source": "<sdk>", **changes}
        if {"code_configuration", "model", "environment"} & set(changes):
            # local folders and files in what changed are uploaded as on create
            loc = located({**d._document(), **changes}, "<sdk>")
            full = prepare_deployment(
                self._http, loc, d.endpoint_name, Path(base_dir or Path.cwd())
            )
            body.update({k: v for k, v in full.items() if k not in d._names() or k in changes})
        path = deployment_path(d.endpoint_name, d.name)
        result: dict[str, Any] = self._http.request("PATCH", path, json_body=body).json()
        return result

    def get(self, name: str, endpoint_name: str) -> ManagedOnlineDeployment:
        return self._entity(self._http.get(deployment_path(endpoint_name, name)))

    def list(self, endpoint_name: str) -> builtins.list[ManagedOnlineDeployment]:
        found = self._http.get(deployment_path(endpoint_name))["deployments"]
        return [self._entity(d) for d in found]

    def get_logs(
        self, name: str, endpoint_name: str, lines: int = 200, instance: int | None = None
    ) -> str:
        """The deployment log and its instances' output (the last ``lines`` of each)."""
        found = self._http.get(
            f"{deployment_path(endpoint_name, name)}/logs", lines=lines, instance=instance
        )
        return str(found["log"])

    def begin_delete(self, name: str, endpoint_name: str) -> Poller[dict[str, Any]]:
        return _done(self._http.request("DELETE", deployment_path(endpoint_name, name)).json())


# --- batch ----------------------------------------------------------------------------
def _batch_input(
    http: LapisHTTP, input: Any, inputs: Mapping[str, Any] | None
) -> tuple[str, str | None]:
    """What to score, from azure-ai-ml's ``input=`` or one-entry ``inputs={…}``."""
    if inputs:
        if input is not None or len(inputs) != 1:
            raise InvalidParameterValue("give one input: input=… or inputs={name: …}")
        input = next(iter(inputs.values()))
    if input is None:
        raise InvalidParameterValue("give the input to score (a folder, a file or a URL)")
    kind: str | None = None
    if isinstance(input, (Input, Data)):
        kind, input = input.type, input.path
    from lapis.sdk.data_upload import client_input

    path, _inferred = client_input(http, str(input), kind)  # local data: uploaded first
    return path, kind


class BatchEndpointOperations:
    """``client.batch_endpoints``: each ``invoke`` is a job (``client.jobs.stream`` it)."""

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def _path(self, name: str) -> str:
        return f"/api/v1/batchEndpoints/{_q(name)}"

    def _entity(self, raw: dict[str, Any]) -> BatchEndpoint:
        return BatchEndpoint._from(raw, self._http.url)

    def begin_create_or_update(self, endpoint: Any) -> Poller[BatchEndpoint]:
        if isinstance(endpoint, BatchEndpoint) and endpoint._answered:
            doc: dict[str, Any] = {"name": endpoint.name, **endpoint._changes()}
        else:
            loc = _located(endpoint, "batch endpoint")
            doc = {**dict(loc.data), "source": loc.source}
        name = str(doc.get("name") or "")
        if name and self._http.exists(self._path(name)):
            result = self._http.request("PATCH", self._path(name), json_body=doc).json()
        else:
            result = self._http.post("/api/v1/batchEndpoints", doc)
        return _done(self._entity(result))

    def get(self, name: str) -> BatchEndpoint:
        return self._entity(self._http.get(self._path(name)))

    def list(self) -> builtins.list[BatchEndpoint]:
        return [self._entity(e) for e in self._http.get("/api/v1/batchEndpoints")["endpoints"]]

    def invoke(
        self,
        endpoint_name: str,
        input: Any = None,
        deployment_name: str | None = None,
        *,
        inputs: Mapping[str, Any] | None = None,
        input_type: str | None = None,
    ) -> Job:
        """Score every file of a folder, or one file (local or an http(s) URL); the
        scoring job (predictions in its output ``score``). ``input`` may be a path,
        an ``Input`` or a ``Data``; ``inputs={"name": Input(…)}`` works as on Azure."""
        given, kind = _batch_input(self._http, input, inputs)
        body: dict[str, Any] = {"input": given}
        if input_type or kind:
            body["input_type"] = input_type or kind
        if deployment_name:
            body["deployment_name"] = deployment_name
        raw = self._http.post(f"{self._path(endpoint_name)}/invoke", body)
        return Job._from(raw, self._http.url)

    def list_jobs(self, endpoint_name: str, max_results: int = 50) -> builtins.list[Job]:
        found = self._http.get(f"{self._path(endpoint_name)}/jobs", max_results=max_results)
        return [Job._from(j, self._http.url) for j in found["jobs"]]

    def begin_delete(self, name: str) -> Poller[dict[str, Any]]:
        return _done(self._http.request("DELETE", self._path(_named(name))).json())


class BatchDeploymentOperations:
    """``client.batch_deployments``: the code folder is uploaded and frozen at create."""

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def _entity(self, raw: dict[str, Any]) -> BatchDeployment:
        return BatchDeployment._from(raw, self._http.url)

    def begin_create_or_update(
        self, deployment: Any, *, set_default: bool = False, base_dir: str | Path | None = None
    ) -> Poller[BatchDeployment]:
        if isinstance(deployment, (BatchDeployment, ModelBatchDeployment)) and (
            deployment._answered
        ):
            deployment = {**deployment.raw, **deployment._document()}
            deployment = {k: v for k, v in deployment.items() if k in DEPLOYMENT_KEYS}
            if "settings" in deployment:  # the answer's flat settings live in the block now
                flat = set(SETTINGS_KEYS) - {"instance_count"}
                deployment = {k: v for k, v in deployment.items() if k not in flat}
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
        return _done(self._entity(result))

    def get(self, name: str, endpoint_name: str) -> BatchDeployment:
        return self._entity(
            self._http.get(f"/api/v1/batchEndpoints/{_q(endpoint_name)}/deployments/{_q(name)}")
        )

    def list(self, endpoint_name: str) -> builtins.list[BatchDeployment]:
        found = self._http.get(f"/api/v1/batchEndpoints/{_q(endpoint_name)}/deployments")
        return [self._entity(d) for d in found["deployments"]]

    def list_jobs(self, endpoint_name: str, name: str | None = None) -> builtins.list[Job]:
        """The endpoint's scoring jobs (only deployment ``name``'s when given)."""
        found = self._http.get(f"/api/v1/batchEndpoints/{_q(endpoint_name)}/jobs")["jobs"]
        jobs = [Job._from(j, self._http.url) for j in found]
        if name is None:
            return jobs
        return [j for j in jobs if (j.tags or {}).get("lapis.batch.deployment") == name]


__all__ = [
    "BatchDeployment",
    "BatchDeploymentOperations",
    "BatchEndpoint",
    "BatchEndpointOperations",
    "CodeConfiguration",
    "ManagedOnlineDeployment",
    "ManagedOnlineEndpoint",
    "ModelBatchDeployment",
    "OnlineDeploymentOperations",
    "OnlineEndpointOperations",
    "Poller",
]
