"""Online deployments: the rules (what may be created, changed, deleted) and the records.

A deployment is checked whole before it is recorded: the endpoint exists, the
model version exists (and is registered), the scoring script is in the
uploaded code snapshot, the environment resolves. What the instances will
run — model, code, environment, environment variables — is resolved here and
stored with the document; when an update changes any of it the deployment's
``generation`` goes up and the instance manager (``lapis.endpoints.control.instances``)
rolls the instances over to it. A change of ``instance_count`` alone scales
the current generation; request settings, probes, description and tags apply
in place.

The manager is attached as :attr:`DeploymentService.runtime`; without one
(a unit test, a read-only tool) records are kept and nothing runs.
"""

from __future__ import annotations

import builtins
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from lapis.api import endpoints as api
from lapis.api.models import LineageDeployment
from lapis.endpoints.control.endpoints import EndpointService
from lapis.environments.service import EnvironmentService
from lapis.errors import InvalidParameterValue, InvalidState, ResourceDoesNotExist
from lapis.registry.models import ModelService, model_type
from lapis.specs.deployment import NEEDS_SCRIPT, DeploymentSpec, parse_deployment
from lapis.specs.job import EnvironmentRef
from lapis.specs.yaml_lines import Located, located, suggest
from lapis.store.sql.deployments import DeploymentStore, OnlineDeployment
from lapis.store.sql.engine import Database
from lapis.util import now_ms

DEPLOYMENT_LOG = "deployment.log"
# What the request may carry besides the document (the CLI fills these in).
EXTRAS = ("source", "code_snapshot", "environment_file", "conda_file_text", "all_traffic")


class DeploymentRuntime(Protocol):
    """What the service asks of the instance manager."""

    def notify(self, endpoint: str) -> None: ...

    def instances(self, endpoint: str, deployment: str) -> list[dict[str, Any]] | None: ...

    def wait_stopped(self, endpoint: str, deployment: str, timeout: float) -> bool: ...


def instance_log_name(index: int) -> str:
    return f"instance-{index}.log"


def split_request(body: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The document and the extras (source, code snapshot, environment file…) of a request."""
    doc = {k: v for k, v in body.items() if k not in EXTRAS}
    return doc, {k: body[k] for k in EXTRAS if k in body}


class DeploymentService:
    def __init__(
        self,
        db: Database,
        endpoints: EndpointService,
        models: ModelService,
        environments: EnvironmentService,
        home: Path,
    ) -> None:
        self.store = DeploymentStore(db)
        self.endpoints = endpoints
        self.models = models
        self.environments = environments
        self.artifacts = models.artifacts
        self.home = home
        self.snapshots = home / "snapshots"
        self.root = home / "deployments"
        self.runtime: DeploymentRuntime | None = None
        self.sandbox = True  # instances run under Landlock (Settings.job_sandbox)
        endpoints.deployment_names = self.names
        endpoints.listeners.append(self._endpoint_changed)
        models.deployments_of = self.of_model

    # --- reading -------------------------------------------------------------------
    def names(self, endpoint: str) -> builtins.list[str]:
        return [d.name for d in self.store.list(endpoint)]

    def get(self, endpoint: str, name: str) -> OnlineDeployment:
        e = self.endpoints.get(endpoint)
        found = self.store.get(e.name, name)
        if found is None:
            known = self.names(e.name)
            listing = ", ".join(known) or "none"
            raise ResourceDoesNotExist(
                f"Endpoint '{e.name}' has no deployment '{name}'"
                f"{suggest(name, known)}; its deployments: {listing}"
            )
        return found

    def list(self, endpoint: str) -> builtins.list[OnlineDeployment]:
        return self.store.list(self.endpoints.get(endpoint).name)

    def of_model(self, model_name: str, version: str) -> builtins.list[LineageDeployment]:
        """The deployments serving one model version (for the model's lineage)."""
        return [
            LineageDeployment(
                endpoint=self._endpoint_label(d.endpoint),
                deployment=d.name,
                provisioning_state=d.provisioning_state,
            )
            for d in self.store.by_model(model_name, version)
        ]

    def _endpoint_label(self, lower: str) -> str:
        e = self.endpoints.store.get(lower)
        return e.name if e else lower

    def folder(self, d: OnlineDeployment) -> Path:
        """Logs and materialised generations of one deployment (names are checked: safe)."""
        return self.root / d.endpoint / d.name.lower()

    def endpoint_detail(self, name: str, base_url: str) -> api.EndpointDetail:
        """An endpoint with each deployment's name, state, model and instance count."""
        e = self.endpoints.get(name)
        briefs = [
            api.DeploymentBrief(
                name=d.name,
                provisioning_state=d.provisioning_state,
                model=d.spec["doc"]["model"],
                instance_count=d.spec["doc"]["instance_count"],
            )
            for d in self.list(e.name)
        ]
        view = self.endpoints.describe(e, base_url)
        return api.EndpointDetail(**dict(view), deployments=briefs)

    def describe(self, d: OnlineDeployment) -> api.DeploymentOut:
        """The API's view: Azure's names plus state, reason and the instances."""
        doc = dict(d.spec["doc"])
        e = self.endpoints.store.get(d.endpoint)
        traffic = {k.lower(): v for k, v in (e.traffic if e else {}).items()}
        live = self.runtime.instances(d.endpoint, d.name) if self.runtime else None
        if live is None:
            live = [
                {
                    "index": r.idx,
                    "generation": r.generation,
                    "state": r.state,
                    "ready": False,
                    "restarts": r.restarts,
                    "pid": r.pid,
                    "port": r.port,
                    "started_at": r.started_at,
                }
                for r in self.store.instances(d.endpoint, d.name)
            ]
        return api.DeploymentOut.model_validate(
            {
                **doc,  # the document as given (Azure's names), then what Lapis adds
                "endpoint_name": e.name if e else d.endpoint,
                "type": "managed",
                "model_type": d.spec["model"]["type"],
                "environment_label": d.spec["environment"]["label"],
                "provisioning_state": d.provisioning_state,
                "state_reason": d.state_reason,
                "generation": d.generation,
                "traffic": traffic.get(d.name.lower(), 0),
                "instances": live,
                "created_by": d.created_by,
                "created_at": d.created_at,
                "updated_at": d.updated_at,
            }
        )

    # --- writing -------------------------------------------------------------------
    def create(
        self,
        endpoint: str,
        doc: Mapping[str, Any] | Located,
        extras: Mapping[str, Any] | None = None,
        created_by: str | None = None,
    ) -> OnlineDeployment:
        extras = dict(extras or {})
        source = str(extras.get("source") or "<request>")
        e = self.endpoints.get(endpoint)
        spec = self._parse(e.name, doc, source)
        resolved = self._resolve(spec, extras, None)
        now = now_ms()
        d = OnlineDeployment(
            endpoint=e.name.lower(),
            name=spec.name,
            spec=resolved,
            provisioning_state="Creating",
            created_at=now,
            updated_at=now,
            model_name=resolved["model"]["name"],
            model_version=resolved["model"]["version"],
            created_by=created_by,
        )
        self.store.insert(d)
        if extras.get("all_traffic"):
            traffic = {n: 0 for n in self.names(e.name)}
            traffic[spec.name] = 100
            self.endpoints.set_traffic(e.name, traffic)
        self._notify(e.name)
        return self.get(e.name, spec.name)

    def update(
        self,
        endpoint: str,
        name: str,
        doc: Mapping[str, Any] | Located,
        extras: Mapping[str, Any] | None = None,
    ) -> OnlineDeployment:
        """Apply the keys given over the stored document; roll over when what runs changed."""
        extras = dict(extras or {})
        source = str(extras.get("source") or "<request>")
        current = self.get(endpoint, name)
        loc = located(doc, source)
        if not isinstance(loc.data, Mapping):
            raise loc.error((), "must be a mapping of deployment settings")
        given = dict(loc.data)
        if "name" in given and str(given["name"]).lower() != current.name.lower():
            raise loc.error(("name",), f"does not match the deployment '{current.name}'")
        merged = {**current.spec["doc"], **given}
        merged = {k: v for k, v in merged.items() if v is not None}
        spec = self._parse(current.endpoint, Located(merged, source, loc.lines), source)
        resolved = self._resolve(spec, extras, current.spec)
        values: dict[str, Any] = {"spec": resolved, "updated_at": now_ms()}
        values["model_name"] = resolved["model"]["name"]
        values["model_version"] = resolved["model"]["version"]
        retry = current.provisioning_state == "Failed"  # a failed generation is tried afresh
        if retry or resolved["signature"] != current.spec["signature"]:
            values["generation"] = current.generation + 1
            values.update(provisioning_state="Updating", state_reason=None)
        elif spec.instance_count != current.spec["doc"]["instance_count"]:
            values.update(provisioning_state="Updating", state_reason=None)
        self.store.update(current.endpoint, current.name, **values)
        self._notify(current.endpoint)
        return self.get(current.endpoint, current.name)

    def delete(self, endpoint: str, name: str, wait: float = 30.0) -> OnlineDeployment:
        """Refused while the deployment takes (or mirrors) traffic, as Azure refuses it."""
        d = self.get(endpoint, name)
        e = self.endpoints.get(endpoint)
        for what, split in (("traffic", e.traffic), ("mirror traffic", e.mirror_traffic)):
            share = next((v for k, v in split.items() if k.lower() == d.name.lower()), 0)
            if share > 0:
                raise InvalidState(
                    f"Deployment '{d.name}' receives {share}% of endpoint '{e.name}' {what}; "
                    f"set it to 0 first (lapis online-endpoint update {e.name} "
                    f"--{what.replace(' ', '-')} …) and then delete it"
                )
        self._remove(e.name, d, wait)
        for key, split in (("traffic", e.traffic), ("mirror_traffic", e.mirror_traffic)):
            kept = {k: v for k, v in split.items() if k.lower() != d.name.lower()}
            if kept != split:
                self.endpoints.store.update(e.name, **{key: kept}, updated_at=now_ms())
        self._notify(e.name)
        return d

    def _remove(self, endpoint: str, d: OnlineDeployment, wait: float) -> None:
        self.store.delete(d.endpoint, d.name)
        if self.runtime is not None:
            self.runtime.notify(endpoint)
            self.runtime.wait_stopped(d.endpoint, d.name, wait)
        self.store.delete_instances(d.endpoint, d.name)
        shutil.rmtree(self.folder(d), ignore_errors=True)

    def _endpoint_changed(self, endpoint: str, deleted: bool) -> None:
        if deleted:  # an endpoint takes its deployments with it
            for d in self.store.list(endpoint):
                self._remove(endpoint, d, 30.0)
        self._notify(endpoint)

    def _notify(self, endpoint: str) -> None:
        if self.runtime is not None:
            self.runtime.notify(endpoint)

    # --- logs ----------------------------------------------------------------------
    def logs(self, endpoint: str, name: str, lines: int = 200, instance: int | None = None) -> str:
        """The control-plane log then each instance's output, or one instance's output."""
        d = self.get(endpoint, name)
        folder = self.folder(d)
        if instance is not None:
            count = int(d.spec["doc"]["instance_count"])
            path = folder / instance_log_name(instance)
            if not path.exists():
                raise ResourceDoesNotExist(
                    f"Deployment '{d.name}' has no log for instance {instance} "
                    f"(instances 0 to {count - 1})"
                )
            return tail(path, lines)
        parts = [f"=== {DEPLOYMENT_LOG} ===\n{tail(folder / DEPLOYMENT_LOG, lines)}"]
        for path in sorted(folder.glob("instance-*.log")):
            parts.append(f"=== {path.name} ===\n{tail(path, lines)}")
        return "\n".join(parts)

    # --- checking and resolving --------------------------------------------------------
    def _parse(
        self, endpoint: str, doc: Mapping[str, Any] | Located, source: str
    ) -> DeploymentSpec:
        loc = located(doc, source)
        spec = parse_deployment(loc)
        if spec.endpoint_name is not None and spec.endpoint_name.lower() != endpoint.lower():
            raise loc.error(
                ("endpoint_name",),
                f"is '{spec.endpoint_name}', but the deployment is being made on '{endpoint}'",
            )
        spec.endpoint_name = self.endpoints.get(endpoint).name
        return spec

    def _resolve(
        self, spec: DeploymentSpec, extras: dict[str, Any], stored: dict[str, Any] | None
    ) -> dict[str, Any]:
        source = spec.source
        model = self._model(spec, source)
        if spec.scoring_script is None and model["type"] != "mlflow_model":
            raise InvalidParameterValue(
                f"{source}: 'code_configuration' {NEEDS_SCRIPT} (model "
                f"{model['name']}:{model['version']} is a {model['type']})"
            )
        code = self._code(spec, extras, stored, source)
        if spec.environment is None and spec.scoring_script is None:
            env = self._model_environment(model, source)  # Azure's no-code MLflow deployment
        else:
            env = self._environment(spec, extras, stored, source)
        doc = spec.document()
        doc["model"] = f"azureml:{model['name']}:{model['version']}"
        running = [model, code, env, doc["environment_variables"]]
        return {
            "doc": doc,
            "model": model,
            "code": code,
            "environment": env,
            "signature": json.dumps(running, sort_keys=True),
        }

    def _model(self, spec: DeploymentSpec, source: str) -> dict[str, Any]:
        ref = spec.model
        assert ref is not None
        if ref.path is not None:
            raise InvalidParameterValue(
                f"{source}: model: the inline model at '{ref.path}' must be registered first "
                "(the CLI uploads it as a new model version)"
            )
        try:
            mv = self.models.get(str(ref.name), ref.version, ref.label)
        except (ResourceDoesNotExist, InvalidParameterValue) as exc:
            raise type(exc)(f"{source}: model: {exc.message}") from None
        if mv.status != "READY":
            raise InvalidState(
                f"{source}: model: {mv.name}:{mv.version} is {mv.status}; its upload never finished"
            )
        return {"name": mv.name, "version": str(mv.version), "type": model_type(mv)}

    def _code(
        self,
        spec: DeploymentSpec,
        extras: dict[str, Any],
        stored: dict[str, Any] | None,
        source: str,
    ) -> dict[str, Any] | None:
        if spec.scoring_script is None:
            return None
        digest = extras.get("code_snapshot")
        if not digest and stored and stored.get("code"):
            old = stored["doc"].get("code_configuration") or {}
            if old.get("code") == spec.code:
                digest = stored["code"]["digest"]
        if not isinstance(digest, str) or not digest:
            raise InvalidParameterValue(
                f"{source}: code_configuration.code: '{spec.code}' must be uploaded as a "
                "snapshot first (the CLI does this)"
            )
        folder = self.snapshots / digest
        if len(digest) != 64 or not folder.is_dir():
            raise InvalidParameterValue(f"{source}: code snapshot {digest[:12]} was not uploaded")
        script = folder / spec.scoring_script
        if not script.is_file():
            found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.py"))
            hint = suggest(spec.scoring_script, found)
            raise InvalidParameterValue(
                f"{source}: code_configuration.scoring_script: '{spec.scoring_script}' is not "
                f"in the code folder '{spec.code}'{hint}; Python files there: "
                f"{', '.join(found[:10]) or 'none'}"
            )
        return {"digest": digest, "scoring_script": spec.scoring_script}

    def _model_environment(self, model: dict[str, Any], source: str) -> dict[str, Any]:
        """The environment built from the MLflow model's own conda.yaml (or requirements)."""
        resolved = self.environments.for_model(self.models, model, source)
        assert resolved.spec is not None
        return {
            "kind": resolved.kind,
            "label": resolved.label,
            "digest": resolved.digest,
            "image": None,
            "spec": resolved.spec.canonical(),
        }

    def _environment(
        self,
        spec: DeploymentSpec,
        extras: dict[str, Any],
        stored: dict[str, Any] | None,
        source: str,
    ) -> dict[str, Any]:
        ref = spec.environment or EnvironmentRef("system")
        fresh = extras.get("environment_file") or extras.get("conda_file_text")
        same = stored is not None and stored["doc"].get("environment") == spec.environment_raw
        if same and not fresh and ref.kind in ("file", "inline") and stored is not None:
            return dict(stored["environment"])  # nothing new to read: keep what was resolved
        _, resolved = self.environments.resolve_sent(ref, extras, source)
        return {
            "kind": resolved.kind,
            "label": resolved.label,
            "digest": resolved.digest,
            "image": resolved.image,
            "spec": resolved.spec.canonical() if resolved.spec is not None else None,
        }


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a log (read from its end: logs can grow large)."""
    try:
        with open(path, "rb") as fh:
            size = path.stat().st_size
            fh.seek(max(0, size - max(lines, 1) * 400))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "".join(text.splitlines(keepends=True)[-lines:]) if lines > 0 else ""
