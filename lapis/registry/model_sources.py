"""Where a new model version's files are, when they are not uploaded: a job's output
(``azureml://jobs/<job>/outputs/<o>``), a path in a job's run artifacts
(``…/outputs/artifacts/paths/<p>``) or a run's (``runs:/<run>/<path>``). Each is checked
to hold files; none is copied — the version points at it (docs/models.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lapis.artifacts.store import ArtifactStore, clean_relpath, proxied_path
from lapis.data.datastores import DatastoreService
from lapis.entities.jobs import Job
from lapis.errors import InvalidParameterValue, ResourceDoesNotExist
from lapis.jobs.service import JobService
from lapis.registry.service import RegistryService

_JOB_PATHS = re.compile(r"^azureml://jobs/([^/]+)/outputs/artifacts/paths/(.*)$")
_JOB_OUTPUT = re.compile(r"^azureml://jobs/([^/]+)/outputs/([^/]+)/?$")


@dataclass(frozen=True)
class Source:
    """Where a new version's files are: the stored source URI, its run, and its job."""

    uri: str
    run_id: str | None = None
    job: Job | None = None
    folder: str | None = None  # the name its files are registered under, when not the path's


class ModelSources:
    def __init__(self, registry: RegistryService, artifacts: ArtifactStore, jobs: JobService):
        self.registry = registry
        self.artifacts = artifacts
        self.jobs = jobs

    def resolve(self, path: object) -> Source:
        """A job output or ``runs:/`` URI as a source, with its run and job; checked to exist."""
        if not isinstance(path, str) or not path:
            raise InvalidParameterValue("Missing the model's path")
        if m := _JOB_PATHS.match(path):
            job = self.jobs.get(m.group(1))
            return self._run_source(job.run_id, clean_relpath(m.group(2)), job, path)
        if m := _JOB_OUTPUT.match(path):
            job = self.jobs.get(m.group(1))
            outputs = job.spec.get("outputs") or {}
            if m.group(2) not in outputs:
                known = ", ".join(outputs) or "none"
                raise ResourceDoesNotExist(
                    f"Job {job.name} has no output named '{m.group(2)}'; its outputs: {known}"
                )
            dest = outputs[m.group(2)].get("dest")
            if dest:
                return self._datastore_source(job, m.group(2), dest, path)
            return self._run_source(job.run_id, f"named-outputs/{m.group(2)}", job, path)
        if path.startswith("runs:/"):
            run_id, _, rel = path[len("runs:/") :].lstrip("/").partition("/")
            found = self.jobs.store.find(run_id) if run_id else None
            return self._run_source(run_id, clean_relpath(rel), found, path)
        if path.startswith("azureml://"):
            raise InvalidParameterValue(
                f"Unsupported model path '{path}': use azureml://jobs/<job>/outputs/<output> or "
                "azureml://jobs/<job>/outputs/artifacts/paths/<path>"
            )
        raise InvalidParameterValue(
            f"Unsupported model path '{path}': give a local path (the CLI uploads it), a job "
            "output (azureml://jobs/…) or runs:/<run_id>/<path>"
        )

    def _run_source(self, run_id: str, rel: str, job: Job | None, given: str) -> Source:
        run = self.registry.tracking.get_run(run_id)
        root = proxied_path(run.info.artifact_uri)
        if root is None:
            raise InvalidParameterValue(f"Run {run_id}'s artifacts are not in this workspace")
        full = f"{root}/{rel}" if rel else root
        if not self.artifacts.is_file(full) and not self.artifacts.walk_files(full):
            raise ResourceDoesNotExist(f"Nothing stored at '{given}' (run {run_id}, path '{rel}')")
        return Source(f"runs:/{run_id}/{rel}".rstrip("/"), run_id, job)

    def _datastore_source(self, job: Job, output: str, dest: dict[str, Any], given: str) -> Source:
        """An output the job wrote to one of the workspace's own datastores — the default
        for every output — is a folder of the artifact store: the version points at it."""
        rel = DatastoreService.artifact_path(str(dest["datastore"]), str(dest["rel"]))
        if rel is None:
            raise InvalidParameterValue(
                f"{given} was written to datastore '{dest['datastore']}': a model is "
                "registered from the workspace's own datastore; download the output "
                "(lapis job download) and register the folder"
            )
        if not self.artifacts.is_file(rel) and not self.artifacts.walk_files(rel):
            raise ResourceDoesNotExist(f"Nothing stored at '{given}' (job {job.name})")
        return Source(f"mlflow-artifacts:/{rel}", job.run_id, job, folder=output)
