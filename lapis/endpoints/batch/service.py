"""Batch endpoints: a stable name, deployments behind it, and invocations that are jobs.

A batch invocation *is* a Lapis command job, so it gets status, logs,
streaming, cancel, download and run history from the job system for free.
``invoke`` builds the job:

- its **code snapshot** is the deployment's scoring code (uploaded once, at
  ``batch-deployment create``, and frozen there as Azure does) plus
  ``lapis_batch_driver.py`` — a copy of :mod:`lapis.endpoints.runtime.batch_driver`,
  standard library only, since it runs in the deployment's environment where
  Lapis is not installed — and ``lapis_batch.json``, the driver's settings;
- its **inputs** are the data folder (``data``, a local path read-only copied
  by the job system) and the model (``model``, a local copy of the model
  version's files, fetched from the artifact store once per version);
- its **output** ``score`` is the folder the driver writes ``predictions.csv``
  into; the job keeps it as a named output (``lapis job download``);
- its environment, compute and environment variables are the deployment's;
  tags ``lapis.batch.endpoint`` / ``lapis.batch.deployment`` point back here and
  the experiment is named after the endpoint, as Azure names it.

The data folder is a path on the server's host: for now the CLI and the server
share the machine (as job inputs do).
"""

from __future__ import annotations

import builtins
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from lapis.api import endpoints as api
from lapis.artifacts.store import ArtifactStore
from lapis.compute.service import ComputeService
from lapis.endpoints.batch import invocation
from lapis.entities.auth import Principal
from lapis.entities.jobs import Job
from lapis.environments.service import EnvironmentService
from lapis.errors import InvalidParameterValue, InvalidState, ResourceDoesNotExist
from lapis.jobs.service import JobService
from lapis.registry.models import ModelService, model_type
from lapis.specs.batch import (
    BatchDeploymentSpec,
    parse_batch_deployment,
    parse_batch_endpoint,
    validate_name,
)
from lapis.specs.yaml_lines import Located, located, suggest
from lapis.store.sql.batch import BatchDeployment, BatchEndpoint, BatchStore
from lapis.store.sql.engine import Database
from lapis.util import now_ms

EXTRAS = ("source", "code_snapshot", "environment_file", "conda_file_text", "set_default")


def split_request(body: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The document and the extras (source, code snapshot, environment file…) of a request."""
    doc = {k: v for k, v in body.items() if k not in EXTRAS}
    extras = {k: body[k] for k in EXTRAS if k in body}
    return doc, extras


class BatchService:
    def __init__(
        self,
        db: Database,
        jobs: JobService,
        models: ModelService,
        artifacts: ArtifactStore,
        environments: EnvironmentService,
        compute: ComputeService,
        home: Path,
    ) -> None:
        self.store = BatchStore(db)
        self.jobs = jobs
        self.models = models
        self.artifacts = artifacts
        self.environments = environments
        self.compute = compute
        self.models_root = home / "batch" / "models"

    # --- endpoints -------------------------------------------------------------------
    def get(self, name: str) -> BatchEndpoint:
        found = self.store.get_endpoint(name)
        if found is None:
            known = [e.name for e in self.store.endpoints()]
            raise ResourceDoesNotExist(
                f"Batch endpoint '{name}' does not exist. Known batch endpoints: "
                f"{', '.join(known) or 'none'}.{_did_you_mean(name, known)}"
            )
        return found

    def list(self) -> builtins.list[BatchEndpoint]:
        return self.store.endpoints()

    def describe(self, e: BatchEndpoint, base_url: str) -> api.BatchEndpointOut:
        """The API's view of an endpoint, with Azure's names."""
        return api.BatchEndpointOut(
            name=e.name,
            description=e.description,
            tags=e.tags,
            defaults={"deployment_name": e.default_deployment},
            deployments=[d.name for d in self.store.deployments(e.name)],
            scoring_uri=f"{base_url.rstrip('/')}/api/v1/batchEndpoints/{e.name}/invoke",
            provisioning_state=e.provisioning_state,
            created_by=e.created_by,
            created_at=e.created_at,
            updated_at=e.updated_at,
        )

    def create(
        self,
        doc: Mapping[str, Any] | Located,
        *,
        source: str = "<request>",
        created_by: str | None = None,
    ) -> BatchEndpoint:
        """Create a batch endpoint from its YAML document (Azure's batchEndpoint shape)."""
        spec = parse_batch_endpoint(located(doc, source))
        assert spec.name is not None
        now = now_ms()
        e = BatchEndpoint(
            name=spec.name,
            created_at=now,
            updated_at=now,
            description=spec.description,
            tags=spec.tags,
            default_deployment=spec.default_deployment,
            created_by=created_by,
        )
        self.store.insert_endpoint(e)
        return e

    def update(
        self, name: str, doc: Mapping[str, Any] | Located, *, source: str = "<request>"
    ) -> BatchEndpoint:
        """Change description, tags or the default deployment (present keys only)."""
        e = self.get(name)
        spec = parse_batch_endpoint(located(doc, source), partial=True)
        if spec.name is not None and spec.name.lower() != e.name.lower():
            raise InvalidParameterValue(
                f"{source}: name '{spec.name}' does not match the endpoint being updated "
                f"('{e.name}'); an endpoint cannot be renamed"
            )
        values: dict[str, Any] = {}
        if "description" in spec.given:
            values["description"] = spec.description
        if "tags" in spec.given:
            values["tags"] = spec.tags
        if spec.default_deployment is not None:
            values["default_deployment"] = self.get_deployment(e.name, spec.default_deployment).name
        if values:
            values["updated_at"] = now_ms()
            self.store.update_endpoint(e.name, **values)
        return self.get(e.name)

    def delete(self, name: str) -> BatchEndpoint:
        """Delete an endpoint and its deployments; its past invocations stay as jobs."""
        e = self.get(name)
        self.store.delete_endpoint(e.name)
        return e

    # --- deployments -----------------------------------------------------------------
    def get_deployment(self, endpoint: str, name: str) -> BatchDeployment:
        e = self.get(endpoint)
        found = self.store.get_deployment(e.name, name)
        if found is None:
            known = [d.name for d in self.store.deployments(e.name)]
            raise ResourceDoesNotExist(
                f"Batch endpoint '{e.name}' has no deployment '{name}'; its deployments: "
                f"{', '.join(known) or 'none yet'}.{_did_you_mean(name, known)}"
            )
        return found

    def list_deployments(self, endpoint: str) -> builtins.list[BatchDeployment]:
        return self.store.deployments(self.get(endpoint).name)

    def describe_deployment(self, d: BatchDeployment) -> api.BatchDeploymentOut:
        e = self.store.get_endpoint(d.endpoint)
        spec = d.spec
        return api.BatchDeploymentOut.model_validate(
            {
                **spec["doc"],  # the document as given (Azure's names), then what Lapis adds
                "endpoint_name": e.name if e else d.endpoint,
                "model": f"azureml:{d.model_name}:{d.model_version}",
                "model_type": spec["model"]["type"],
                "code": spec["code"],
                "environment_label": spec["environment"]["label"],
                "is_default": bool(
                    e and e.default_deployment and e.default_deployment.lower() == d.name.lower()
                ),
                "provisioning_state": d.provisioning_state,
                "created_by": d.created_by,
                "created_at": d.created_at,
                "updated_at": d.updated_at,
            }
        )

    def create_deployment(
        self,
        endpoint: str,
        doc: Mapping[str, Any] | Located,
        extras: Mapping[str, Any] | None = None,
        *,
        created_by: str | None = None,
        replace: str | None = None,
    ) -> tuple[BatchDeployment, bool]:
        """Check, resolve (model version, code snapshot, environment) and store a deployment.

        Returns the deployment and whether it is now the endpoint's default: the
        first deployment of an endpoint becomes its default, as does any created
        with ``set_default``. With ``replace`` (the name of an existing deployment)
        the document replaces that deployment's, checked the same way; later
        invocations use it, past ones keep what they ran with."""
        extras = dict(extras or {})
        source = str(extras.get("source") or "<request>")
        loc = located(doc, source)
        spec = parse_batch_deployment(loc)
        e = self.get(endpoint)
        if spec.endpoint_name is not None and spec.endpoint_name.lower() != e.name.lower():
            raise loc.error(
                ("endpoint_name",),
                f"is '{spec.endpoint_name}', but the deployment is being made on '{e.name}'",
            )
        spec.endpoint_name = e.name
        existing = None
        if replace is not None:
            existing = self.get_deployment(e.name, replace)
            if spec.name.lower() != existing.name.lower():
                raise loc.error(
                    ("name",),
                    f"is '{spec.name}', but deployment '{existing.name}' is being updated",
                )
        model = self._model(spec)
        if spec.scoring_script is None and model["type"] != "mlflow_model":
            raise InvalidParameterValue(
                f"{source}: 'code_configuration' is required: model {model['name']}:"
                f"{model['version']} is a {model['type']}, and only an mlflow_model can be "
                "scored without a scoring script"
            )
        try:
            self.compute.get(spec.compute)
        except ResourceDoesNotExist as exc:
            raise ResourceDoesNotExist(f"{source}: compute: {exc.message}") from None
        code = self._code(spec, extras)
        if spec.environment_raw is None and spec.scoring_script is None:
            env = self._model_environment(model, source)  # Azure's no-code MLflow deployment
        else:
            env = self._environment(spec, extras)
        doc_out = spec.document()
        doc_out["model"] = f"azureml:{model['name']}:{model['version']}"
        now = now_ms()
        d = BatchDeployment(
            endpoint=e.name.lower(),
            name=spec.name,
            spec={
                "doc": doc_out,
                "model": model,
                "code": code,
                "environment": env,
                "settings": spec.settings(),
            },
            created_at=now,
            updated_at=now,
            model_name=model["name"],
            model_version=model["version"],
            created_by=created_by,
        )
        if existing is None:
            is_default = self.store.insert_deployment(d, bool(extras.get("set_default")))
            return d, is_default
        d.name, d.created_at, d.created_by = existing.name, existing.created_at, existing.created_by
        self.store.replace_deployment(d)
        if extras.get("set_default"):
            self.store.update_endpoint(e.name, default_deployment=d.name, updated_at=now)
        return d, (self.get(e.name).default_deployment or "").lower() == d.name.lower()

    def delete_deployment(self, endpoint: str, name: str) -> BatchDeployment:
        """Delete a deployment; the default one only when it is the last (as Azure does),
        so an endpoint with deployments never loses its default by accident."""
        e = self.get(endpoint)
        d = self.get_deployment(e.name, name)
        others = [
            x.name for x in self.store.deployments(e.name) if x.name.lower() != d.name.lower()
        ]
        if others and (e.default_deployment or "").lower() == d.name.lower():
            raise InvalidState(
                f"'{d.name}' is the default deployment of batch endpoint '{e.name}'; make another "
                f"one the default first (`lapis batch-endpoint update {e.name} "
                f"--default-deployment {others[0]}`), or delete the endpoint"
            )
        self.store.delete_deployment(d.endpoint, d.name, now_ms())
        return d

    def _model(self, spec: BatchDeploymentSpec) -> dict[str, Any]:
        where = f"{spec.source}: model"
        if spec.model_path is not None:
            raise InvalidParameterValue(
                f"{where}: the inline model at '{spec.model_path}' must be registered first "
                "(the CLI and SDK upload it as a new model version)"
            )
        try:
            mv = self.models.get(spec.model_name, spec.model_version, spec.model_label)
        except (ResourceDoesNotExist, InvalidParameterValue) as exc:
            raise type(exc)(f"{where}: {exc.message}") from None
        if mv.status != "READY":
            raise InvalidState(
                f"{where}: {mv.name}:{mv.version} is {mv.status}; its upload never finished"
            )
        return {"name": mv.name, "version": str(mv.version), "type": model_type(mv)}

    def _code(self, spec: BatchDeploymentSpec, extras: Mapping[str, Any]) -> dict[str, Any] | None:
        if spec.scoring_script is None:
            return None
        where = f"{spec.source}: code_configuration"
        digest = extras.get("code_snapshot")
        if not isinstance(digest, str) or not digest:
            raise InvalidParameterValue(
                f"{where}.code: '{spec.code}' must be uploaded as a snapshot first "
                "(the CLI does this)"
            )
        folder = self.jobs.snapshots / digest
        if len(digest) != 64 or not folder.is_dir():
            raise InvalidParameterValue(f"{where}.code: snapshot {digest[:12]} was not uploaded")
        if not (folder / spec.scoring_script).is_file():
            found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.py"))
            raise InvalidParameterValue(
                f"{where}.scoring_script: '{spec.scoring_script}' is not in the code folder "
                f"'{spec.code}'{suggest(spec.scoring_script, found)}; Python files there: "
                f"{', '.join(found[:10]) or 'none'}"
            )
        for reserved in (invocation.DRIVER, *invocation.COMPANIONS, invocation.CONFIG):
            if (folder / reserved).exists():
                raise InvalidParameterValue(
                    f"{where}.code: the code folder holds '{reserved}', a name the batch "
                    "driver needs; rename that file"
                )
        return {"digest": digest, "scoring_script": spec.scoring_script}

    def _model_environment(self, model: dict[str, Any], source: str) -> dict[str, Any]:
        """Each invocation's job runs in the environment the MLflow model's own files ask
        for, inlined as a conda file (built once, then a cache hit)."""
        resolved = self.environments.for_model(self.models, model, source)
        assert resolved.spec is not None
        dependencies: list[Any] = ["pip", {"pip": list(resolved.spec.requirements)}]
        if resolved.spec.python:
            dependencies.insert(0, f"python={resolved.spec.python}")
        conda = yaml.safe_dump({"name": "mlflow-model", "dependencies": dependencies})
        return {
            "label": resolved.label,
            "digest": resolved.digest,
            "job": {"conda_file": conda},
        }

    def _environment(self, spec: BatchDeploymentSpec, extras: Mapping[str, Any]) -> dict[str, Any]:
        """Resolve the environment now (errors at create, not at invoke) and keep the
        ``environment:`` value every invocation's job will name."""
        ref, resolved = self.environments.resolve_sent(spec.environment, extras, spec.source)
        job_env: Any
        if ref.kind == "system":
            job_env = "system"
        elif ref.kind == "registered":
            job_env = f"azureml:{resolved.ref}"  # pinned to the version resolved now
        else:
            conda = ref.conda_file
            if isinstance(conda, str) and not conda.endswith("\n"):
                conda += "\n"  # a one-line string would be taken for a path
            job_env = {k: v for k, v in (("image", ref.image), ("conda_file", conda)) if v}
        return {"label": resolved.label, "digest": resolved.digest, "job": job_env}

    # --- invocations -----------------------------------------------------------------
    def invoke(
        self,
        endpoint: str,
        given_input: str,
        deployment: str | None = None,
        principal: Principal | None = None,
        *,
        input_type: str | None = None,
    ) -> Job:
        """Score every file of a folder (or one file, local or at an http(s) URL) with a
        deployment, as a job; return the job."""
        e = self.get(endpoint)
        if deployment is None:
            if not e.default_deployment:
                known = [d.name for d in self.store.deployments(e.name)]
                raise InvalidState(
                    f"Batch endpoint '{e.name}' has no default deployment; "
                    + (
                        f"name one with --deployment ({', '.join(known)}) or set it with "
                        f"`lapis batch-endpoint update {e.name} --default-deployment NAME`"
                        if known
                        else "create one with `lapis batch-deployment create -f FILE`"
                    )
                )
            deployment = e.default_deployment
        d = self.get_deployment(e.name, deployment)
        data = invocation.batch_input(given_input, input_type)
        if not data.type:  # a reference: a data asset says what it is, the rest are folders
            data = invocation.BatchInput(self._type_of(str(data.path)), data.path)
        model = d.spec["model"]
        model_dir = invocation.model_folder(
            self.models, self.models_root, model["name"], model["version"]
        )
        request = {
            "yaml": yaml.safe_dump(
                invocation.job_document(e.name, d, data, model_dir, self._nodes(d)),
                sort_keys=False,
            ),
            "source": f"batch endpoint {e.name}, deployment {d.name}",
            "snapshot": invocation.scoring_snapshot(self.jobs, d),
        }
        return self.jobs.submit(request, principal, internal=True)

    def _type_of(self, given: str) -> str:
        from lapis.specs.data_asset import parse_data_uri

        uri = parse_data_uri(given)
        if uri.kind == "asset" and self.jobs.data is not None:
            found = self.jobs.data.assets.get(str(uri.name), uri.version, uri.label)
            return found.type if found.type in invocation.INPUT_TYPES else "uri_folder"
        return "uri_folder"

    def _nodes(self, d: BatchDeployment) -> int:
        """Nodes one invocation spreads over: ``instance_count`` on a cluster, else 1 (on
        one host, ``instance_count`` only multiplies the worker processes)."""
        compute = self.compute.get_or_local(str(d.spec["doc"].get("compute") or "local"))
        if compute.type != "amlcompute":
            return 1
        return int(d.spec["doc"].get("resources", {}).get("instance_count", 1) or 1)

    def jobs_of(
        self, endpoint: str, max_results: int = 50, deployment: str | None = None
    ) -> builtins.list[Job]:
        """The endpoint's invocations, newest first (jobs in its experiment with its tag);
        with ``deployment``, only those that deployment scored."""
        e = self.get(endpoint)
        if deployment is not None:
            self.get_deployment(e.name, deployment)  # unknown: 404 with did-you-mean
        try:
            found = self.jobs.list(experiment_name=e.name, max_results=1000)
        except ResourceDoesNotExist:
            return []  # never invoked: its experiment does not exist yet
        mine = [
            j
            for j in found
            if (j.spec.get("tags") or {}).get(invocation.TAG_ENDPOINT, "").lower() == e.name.lower()
            and (
                deployment is None
                or (j.spec.get("tags") or {}).get(invocation.TAG_DEPLOYMENT, "").lower()
                == deployment.lower()
            )
        ]
        return mine[:max_results]


def _did_you_mean(name: str, known: builtins.list[str]) -> str:
    close = difflib.get_close_matches(name.lower(), [k.lower() for k in known], n=1)
    if not close:
        return ""
    return f" Did you mean {next(k for k in known if k.lower() == close[0])}?"


__all__ = ["BatchService", "split_request", "validate_name"]
