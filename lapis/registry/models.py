"""Lapis models (``lapis model …``, ``/api/v1/models``) over the MLflow registry.

There is one store: a Lapis model version *is* an MLflow model version (the
``model_versions`` table), so ``mlflow.register_model`` versions show up here
and versions made here load with ``mlflow.pyfunc.load_model("models:/n/1")``.
What MLflow has no column for lives in version tags under ``lapis.``:

* ``lapis.model.type`` (``custom_model`` / ``mlflow_model``), ``lapis.property.<k>``
  (Azure's ``properties``), ``lapis.archived`` (archive hides from ``list``;
  MLflow clients are unaffected, unlike the ``Archived`` stage, which they use).
* ``lapis.lineage.job``, ``lapis.lineage.inputs`` (JSON), ``lapis.lineage.environment``
  and ``lapis.lineage.environment_digest``: recorded when the version is made
  from a job. A version registered through MLflow has no such tags; its
  lineage is found at read time from its ``run_id`` (the job whose run it is).

Where the files are: a job output is kept as ``runs:/<run>/<path>`` (the job's
run artifacts, never copied); a local upload goes under the store prefix
``models/<name>/<version>/`` and the version is ``PENDING_REGISTRATION`` until
the client says the upload is complete.

Where a deployment finds them: as Azure does, ``AZUREML_MODEL_DIR`` is a folder
that *contains* what was registered — a model registered from ``path: model/``
is at ``$AZUREML_MODEL_DIR/model/…``, one registered from ``model.pkl`` at
``$AZUREML_MODEL_DIR/model.pkl`` — so scoring scripts written for Azure find
their files. The folder's name is recorded at registration (``lapis.model.folder``;
the client sends the local folder's name, a job output or run path gives its
last segment) and :meth:`ModelService.materialize` lays the files out that way.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lapis.api import models as api
from lapis.artifacts.store import ArtifactStore, FileInfo, clean_relpath, proxied_path
from lapis.entities.auth import Principal
from lapis.entities.jobs import Job
from lapis.entities.registry import ModelVersion, ModelVersionStatus
from lapis.errors import (
    InvalidParameterValue,
    InvalidState,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from lapis.jobs.service import JobService
from lapis.registry.model_sources import ModelSources, Source
from lapis.registry.service import RegistryService
from lapis.registry.validation import validate_model_name, validate_tag, validate_version
from lapis.specs.environment import MLFLOW_ENV_FILES
from lapis.store.sql.model_versions import ModelVersionStore

MODEL_TYPES = ("custom_model", "mlflow_model")
TYPE_TAG = "lapis.model.type"
ARCHIVED_TAG = "lapis.archived"
FOLDER_TAG = "lapis.model.folder"  # the registered folder's name (none: a single file)
DEFAULT_FOLDER = "model"  # for versions registered before the folder was recorded
MAX_ENV_FILE = 1024 * 1024  # an environment file bigger than this is not one
PROPERTY_PREFIX = "lapis.property."
LINEAGE_PREFIX = "lapis.lineage."
UPLOAD_PREFIX = "models"


def upload_root(name: str, version: int) -> str:
    return f"{UPLOAD_PREFIX}/{urllib.parse.quote(name, safe='')}/{version}"


class ModelService:
    def __init__(self, registry: RegistryService, artifacts: ArtifactStore, jobs: JobService):
        self.registry = registry
        self.artifacts = artifacts
        self.jobs = jobs
        self.versions = ModelVersionStore(registry.db)  # the one writer of model_versions
        # (model name, version) -> the online deployments serving it; installed by
        # lapis.endpoints.control.deployments.DeploymentService (which is built after this service).
        self.deployments_of: Callable[[str, str], list[api.LineageDeployment]] = lambda _n, _v: []

    # --- create -----------------------------------------------------------------
    def create(
        self, spec: Mapping[str, Any], principal: Principal | None = None
    ) -> api.ModelDetail:
        """Register a version. ``spec`` is the model YAML's fields plus ``upload: true``
        when the client will upload local files next (then ``path`` is not read)."""
        name = validate_model_name(spec.get("name"))
        mtype = spec.get("type") or "custom_model"
        if mtype not in MODEL_TYPES:
            raise InvalidParameterValue(
                f"Unknown model type '{mtype}'; use one of: {', '.join(MODEL_TYPES)}"
            )
        version = None if spec.get("version") in (None, "") else _explicit_version(spec["version"])
        tags = {k: v for k, v in (validate_tag(k, v) for k, v in _mapping(spec, "tags").items())}
        tags[TYPE_TAG] = mtype
        for k, v in _mapping(spec, "properties").items():
            tags.update([validate_tag(PROPERTY_PREFIX + str(k), v)])
        upload = bool(spec.get("upload"))
        source = None if upload else self.resolve_path(spec.get("path"))
        folder = _folder_name(spec.get("upload_folder")) if upload else None
        folder = folder or (source.folder if source else None)
        if folder:
            tags[FOLDER_TAG] = folder
        if source is not None and source.job is not None:
            tags.update(lineage_tags(source.job))
        values = {
            "source": source.uri if source else "",
            "run_id": source.run_id if source else None,
            "description": spec.get("description"),
            "user_id": principal.name if principal else None,
            "status": (
                ModelVersionStatus.PENDING_REGISTRATION if upload else ModelVersionStatus.READY
            ).value,
        }
        self._ensure_model(name, principal)
        number = self._insert(name, version, values, tags)
        if not upload:
            self.registry.version_created(self.registry.get_model_version(name, number))
        return self.show(name, number)

    def resolve_path(self, path: object) -> Source:
        """A job output or ``runs:/`` URI as a source (lapis/registry/model_sources.py)."""
        return ModelSources(self.registry, self.artifacts, self.jobs).resolve(path)

    def _ensure_model(self, name: str, principal: Principal | None) -> None:
        try:
            self.registry.get_registered_model(name)
        except ResourceDoesNotExist:
            with contextlib.suppress(ResourceAlreadyExists):
                self.registry.create_registered_model(name, principal=principal)

    def _insert(
        self, name: str, version: int | None, values: dict[str, Any], tags: dict[str, str]
    ) -> int:
        """Insert ``version`` (or max + 1) through the one writer of model versions;
        an upload's source names its own folder."""
        return self.versions.create_version(
            name,
            values,
            tags,
            version=version,
            source_for=lambda number: f"mlflow-artifacts:/{upload_root(name, number)}",
        )

    # --- uploads ------------------------------------------------------------------
    def _pending(self, name: str, version: object) -> ModelVersion:
        mv = self.registry.get_model_version(name, version)
        if mv.status != ModelVersionStatus.PENDING_REGISTRATION.value:
            raise InvalidState(
                f"Model {name} version {mv.version} is registered; its files are fixed"
            )
        return mv

    def upload_target(self, name: str, version: object, path: str) -> str:
        """The store path one uploaded file goes to (only while the version is pending)."""
        mv = self._pending(name, version)
        rel = clean_relpath(path)
        if not rel:
            raise InvalidParameterValue("Upload path must name a file")
        return f"{upload_root(mv.name, mv.version)}/{rel}"

    def fail_interrupted_uploads(self) -> int:
        """At start-up: a version still ``PENDING_REGISTRATION`` lost its uploader with the
        previous server; it is marked failed (never served, never ``@latest``) rather than
        left half-written. Register it again."""
        return self.versions.fail_pending(
            ModelVersionStatus.PENDING_REGISTRATION.value,
            ModelVersionStatus.FAILED_REGISTRATION.value,
            "the upload was interrupted by a server restart; register the model again",
        )

    def finish_upload(self, name: str, version: object) -> api.ModelDetail:
        mv = self._pending(name, version)
        if not self.artifacts.walk_files(upload_root(mv.name, mv.version)):
            raise InvalidParameterValue(
                f"Model {name} version {mv.version}: no files were uploaded"
            )
        self.versions.set_status(mv.name, int(mv.version), ModelVersionStatus.READY.value)
        self.registry.version_created(self.registry.get_model_version(mv.name, mv.version))
        return self.show(mv.name, mv.version)

    # --- read -----------------------------------------------------------------------
    def get(
        self, name: str, version: object | None = None, label: str | None = None
    ) -> ModelVersion:
        if version not in (None, ""):
            return self.registry.get_model_version(name, version)
        return self.registry.get_version_by_alias(name, label or "latest")

    def list(
        self, name: str | None = None, include_archived: bool = False
    ) -> list[api.ModelVersionOut]:
        where = ""
        if name:
            validate_model_name(name)
            where = "name = '" + name.replace("'", "\\'") + "'"
        found, _ = self.registry.search_model_versions(
            where, order_by=["name ASC", "version_number DESC"]
        )
        return [
            version_out(mv)
            for mv in found
            if include_archived or mv.tags.get(ARCHIVED_TAG) != "true"
        ]

    def show(
        self, name: str, version: object | None = None, label: str | None = None
    ) -> api.ModelDetail:
        mv = self.get(name, version, label)
        return api.ModelDetail(**version_out(mv).model_dump(), lineage=self.lineage(mv))

    def lineage(self, mv: ModelVersion) -> api.Lineage:
        """job → inputs/environment → this version → the deployments serving it."""
        job_name = mv.tags.get(LINEAGE_PREFIX + "job")
        job: Job | None = None
        if job_name:
            try:
                job = self.jobs.get(job_name)
            except ResourceDoesNotExist:
                job = None
        elif mv.run_id:
            job = self.jobs.find_by_run(mv.run_id)
        recorded_inputs = mv.tags.get(LINEAGE_PREFIX + "inputs")
        inputs = (
            json.loads(recorded_inputs) if recorded_inputs else (job_inputs(job) if job else {})
        )
        return api.Lineage(
            run_id=mv.run_id,
            job=None
            if job is None and not job_name
            else api.LineageJob(
                name=job.name if job else job_name,
                status=job.status if job else "deleted",
                compute=job.compute if job else None,
                experiment_id=job.experiment_id if job else None,
            ),
            inputs=inputs,
            environment=api.LineageEnvironment(
                name=mv.tags.get(LINEAGE_PREFIX + "environment")
                or (job.environment if job else None),
                digest=mv.tags.get(LINEAGE_PREFIX + "environment_digest")
                or (job.environment_digest if job else None),
            )
            if job or job_name
            else None,
            deployments=self.deployments_of(mv.name, str(mv.version)),
        )

    # --- change -----------------------------------------------------------------------
    def update(
        self,
        name: str,
        version: object,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> api.ModelDetail:
        mv = self.registry.get_model_version(name, version)
        if description is not None:
            self.registry.update_model_version(name, mv.version, description)
        for k, v in (tags or {}).items():
            if str(k).startswith("lapis."):
                raise InvalidParameterValue(f"Tag '{k}' is reserved (lapis.* tags are Lapis' own)")
            self.registry.set_model_version_tag(name, mv.version, k, v)
        return self.show(name, mv.version)

    def set_archived(self, name: str, version: object, archived: bool) -> api.ModelDetail:
        mv = self.registry.get_model_version(name, version)
        if archived:
            self.registry.set_model_version_tag(name, mv.version, ARCHIVED_TAG, "true")
        elif ARCHIVED_TAG in mv.tags:
            self.registry.delete_model_version_tag(name, mv.version, ARCHIVED_TAG)
        return self.show(name, mv.version)

    def delete(self, name: str, version: object) -> None:
        self.registry.delete_model_version(name, version)

    # --- files --------------------------------------------------------------------------
    def files(self, name: str, version: object) -> api.ModelFiles:
        """The store folder holding the version's files, each file below it, and the name
        of the folder they were registered as (``None`` for a model that is one file)."""
        mv = self.registry.get_model_version(name, version)
        rel = self._store_path(self.registry.get_download_uri(name, mv.version))
        folder: str | None
        if self.artifacts.is_file(rel):
            root, _, base = rel.rpartition("/")
            files, folder = [FileInfo(base, False, None)], None
        else:
            root, files = rel, self.artifacts.walk_files(rel)
            folder = mv.tags.get(FOLDER_TAG) or _source_folder(mv.source)
            if FOLDER_TAG not in mv.tags and mv.source.startswith("mlflow-artifacts:"):
                # uploaded before folders were recorded: one file was a file, else "model"
                folder = None if len(files) == 1 else DEFAULT_FOLDER
        return api.ModelFiles(
            root=root,
            files=[api.ModelFile(path=f.path, size=f.file_size) for f in files],
            folder=folder,
        )

    def materialize(self, name: str, version: object, container: Path) -> tuple[Path, int]:
        """Write the version's files into ``container`` — the folder ``AZUREML_MODEL_DIR``
        names — as Azure lays them out: under the registered folder's name, or the one
        file directly. Returns the model's own path in it and the number of files."""
        listing = self.files(name, version)
        target = container / listing.folder if listing.folder else container
        target.mkdir(parents=True, exist_ok=True)
        inside = target.resolve()
        for item in listing.files:
            dest = (target / item.path).resolve()
            if inside not in dest.parents:
                raise InvalidParameterValue(f"model file '{item.path}' would land outside {target}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(dest, "wb") as fh:
                for chunk in self.artifacts.iter_read(
                    f"{listing.root}/{item.path}" if listing.root else item.path
                ):
                    fh.write(chunk)
        if listing.folder is None and len(listing.files) == 1:
            return target / listing.files[0].path, 1
        return target, len(listing.files)

    def mlflow_files(self, name: str, version: object) -> dict[str, str]:
        """The environment files beside an MLflow model's ``MLmodel`` (``conda.yaml``,
        ``python_env.yaml``, ``requirements.txt``), by name, as text."""
        listing = self.files(name, version)
        mlmodels = sorted(
            (f.path for f in listing.files if f.path.rsplit("/", 1)[-1] == "MLmodel"),
            key=lambda p: p.count("/"),
        )
        if not mlmodels:
            raise InvalidParameterValue(
                f"Model {name} version {version} has no MLmodel file: it is not an MLflow model"
            )
        folder = mlmodels[0].rpartition("/")[0]
        out: dict[str, str] = {}
        sizes = {f.path: f.size for f in listing.files}
        for file_name in MLFLOW_ENV_FILES:
            rel = f"{folder}/{file_name}" if folder else file_name
            if rel in sizes and (sizes[rel] or 0) <= MAX_ENV_FILE:
                full = f"{listing.root}/{rel}" if listing.root else rel
                out[file_name] = b"".join(self.artifacts.iter_read(full)).decode(errors="replace")
        return out

    def _store_path(self, uri: str) -> str:
        rel = proxied_path(uri)
        if rel is not None:
            return rel
        if uri.startswith("runs:/"):
            run_id, _, sub = uri[len("runs:/") :].lstrip("/").partition("/")
            run = self.registry.tracking.get_run(run_id)
            root = proxied_path(run.info.artifact_uri)
            if root is not None:
                sub = clean_relpath(sub)
                return f"{root}/{sub}" if sub else root
        raise InvalidParameterValue(f"Model files at '{uri}' are not in this workspace's store")


def _folder_name(value: object) -> str | None:
    """The uploaded folder's own name, as the client sent it (one path segment)."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or "/" in value or "\\" in value or value in (".", ".."):
        raise InvalidParameterValue(f"'upload_folder' must be a folder name, got {value!r}")
    return value


def _source_folder(source: str) -> str:
    """The last segment of a run path (``runs:/<run>/outputs/model`` → ``model``); a whole
    run, a logged model (``models:/…``) or anything else is ``model``."""
    if source.startswith("runs:/"):
        _, _, rel = source[len("runs:/") :].strip("/").partition("/")
        tail = rel.rstrip("/").rsplit("/", 1)[-1]
        if tail:
            return tail
    return DEFAULT_FOLDER


def _exists(name: str, version: int | None) -> ResourceAlreadyExists:
    return ResourceAlreadyExists(f"Model {name} already has a version {version}")


def _explicit_version(value: object) -> int:
    try:
        return validate_version(value)
    except InvalidParameterValue:
        raise InvalidParameterValue(
            f"Model version must be a positive integer, got '{value}'"
        ) from None


def _mapping(spec: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = spec.get(key) or {}
    if not isinstance(value, dict):
        raise InvalidParameterValue(f"'{key}' must be a mapping of names to values")
    return value


def job_inputs(job: Job) -> dict[str, Any]:
    """The job's inputs: data paths as given (literals too, as values)."""
    out: dict[str, Any] = {}
    for key, value in (job.spec.get("inputs") or {}).items():
        if isinstance(value, dict):
            out[key] = {k: value[k] for k in ("type", "path", "value") if k in value}
        else:
            out[key] = {"value": value}
    return out


def lineage_tags(job: Job) -> dict[str, str]:
    tags = {
        LINEAGE_PREFIX + "job": job.name,
        LINEAGE_PREFIX + "inputs": json.dumps(job_inputs(job), sort_keys=True, default=str),
    }
    if job.environment:
        tags[LINEAGE_PREFIX + "environment"] = job.environment
    if job.environment_digest:
        tags[LINEAGE_PREFIX + "environment_digest"] = job.environment_digest
    return tags


def model_type(mv: ModelVersion) -> str:
    """``custom_model`` or ``mlflow_model``: as registered here, else by whether MLflow
    logged the version from a model (a ``model_id``)."""
    return mv.tags.get(TYPE_TAG, "mlflow_model" if mv.model_id else "custom_model")


def version_out(mv: ModelVersion) -> api.ModelVersionOut:
    """The API shape of one version (Azure's names where they exist)."""
    user_tags = {k: v for k, v in mv.tags.items() if not k.startswith("lapis.")}
    props = {
        k[len(PROPERTY_PREFIX) :]: v for k, v in mv.tags.items() if k.startswith(PROPERTY_PREFIX)
    }
    return api.ModelVersionOut(
        name=mv.name,
        version=mv.version,
        type=model_type(mv),
        path=mv.source,
        description=mv.description,
        tags=user_tags,
        properties=props,
        archived=mv.tags.get(ARCHIVED_TAG) == "true",
        status=mv.status,
        status_message=mv.status_message,
        stage=mv.current_stage,
        aliases=list(mv.aliases),
        run_id=mv.run_id,
        job=mv.tags.get(LINEAGE_PREFIX + "job"),
        created_by=mv.user_id,
        created_at=mv.creation_timestamp,
        updated_at=mv.last_updated_timestamp,
    )
