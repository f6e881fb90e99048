"""Jobs: validate a submission, record it as an MLflow run, queue it, cancel it.

A submission is the job's YAML text (so errors keep file and line), the
``--set`` overrides, the folder the file came from (relative input paths are
taken from there, as Azure does), the digest of an already uploaded code
snapshot and, when the environment's conda file is a path, its text. Everything
is checked here, before the job exists: compute, environment, inputs, code.
Execution belongs to the scheduler (``lapis.jobs.scheduler``).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from lapis.api.jobs import SnapshotRef, SnapshotStored, SubmitJob
from lapis.artifacts.snapshot import check_digest
from lapis.compute.logs import parse_cursor
from lapis.compute.registry import backend_for
from lapis.compute.service import ComputeService
from lapis.data.job_data import ARTIFACTS, JobData
from lapis.entities.auth import Principal
from lapis.entities.compute import Compute
from lapis.entities.job_status import JobStatus
from lapis.entities.jobs import Job
from lapis.environments.service import EnvironmentService
from lapis.errors import (
    InvalidParameterValue,
    InvalidState,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from lapis.jobs.inputs import resolve_inputs
from lapis.jobs.snapshots import keep_snapshot
from lapis.jobs.submission import parse_submission
from lapis.specs.job import CommandJobSpec, generated_name, parse_job
from lapis.specs.pipeline import is_pipeline
from lapis.store.sql.jobs import JobStore
from lapis.tracking.service import TrackingService
from lapis.util import now_ms

SERVERLESS = "serverless"  # compute: serverless: a workspace-managed cluster per size


@dataclass
class Prepared:
    """A checked command job not yet recorded (``JobService.prepare``)."""

    name: str
    display_name: str | None
    compute: str
    stored: dict[str, Any]


class JobService:
    def __init__(
        self,
        store: JobStore,
        tracking: TrackingService,
        compute: ComputeService,
        environments: EnvironmentService,
        home: Path,
    ) -> None:
        self.store = store
        self.tracking = tracking
        self.compute = compute
        self.environments = environments
        self.home = home
        self.snapshots = home / "snapshots"
        self.jobs_root = home / "jobs"
        self.data: JobData | None = None  # by-reference inputs and outputs (context.py)
        self.pipelines: Callable[[Mapping[str, Any], Principal | None], Job] | None = None
        self.wake: Callable[[], None] = lambda: None  # the scheduler replaces these two
        self.on_cancel: Callable[[str], None] = lambda name: None
        self.on_parent: Callable[[], None] = lambda: None  # the pipeline runner's wake-up
        self.ssh_host = "127.0.0.1"  # shown in a job's ssh service command (the server's host)

    # --- code snapshots -----------------------------------------------------------
    def snapshot_dir(self, digest: object) -> Path:
        """The stored snapshot's folder; only a well-formed digest names one."""
        return self.snapshots / check_digest(digest)

    def has_snapshot(self, digest: object) -> bool:
        return self.snapshot_dir(digest).is_dir()

    def store_snapshot(self, digest: str, data: IO[bytes]) -> SnapshotStored:
        return keep_snapshot(self.snapshot_dir(digest), data)

    # --- submission ---------------------------------------------------------------
    def submit(
        self,
        request: SubmitJob | Mapping[str, Any],
        principal: Principal | None,
        internal: bool = False,
    ) -> Job:
        """Validate and queue a job. ``internal`` jobs (a batch invocation the server
        builds) may read the workspace's own files; a client's never can."""
        plain = not isinstance(request, SubmitJob)
        if self.pipelines is not None and plain and is_pipeline(request.get("yaml")):  # type: ignore[union-attr]
            return self.pipelines(request, principal)  # type: ignore[arg-type]
        return self.record(self.prepare(request, principal, internal), principal)

    def prepare(
        self,
        request: SubmitJob | Mapping[str, Any],
        principal: Principal | None,
        internal: bool = False,
    ) -> Prepared:
        """Everything a command job is checked and resolved to, before it exists: what a
        pipeline step's reuse key is computed from (lapis/jobs/reuse.py)."""
        sub = request if isinstance(request, SubmitJob) else parse_submission(request)
        source = sub.source
        base_dir = Path(sub.base_dir) if sub.base_dir else None
        spec = parse_job(sub.yaml, source, sub.overrides, base_dir=None)
        if spec.compute.lower() == SERVERLESS:
            compute = self.compute.serverless(spec.instance_type, source)
            spec.compute = compute.name
        else:
            compute = self.compute.get(spec.compute)
        if not internal:
            self._check_instance_user(compute, principal, source)
        reason = backend_for(compute).unsupported(compute, spec)
        if reason:
            raise InvalidParameterValue(f"{source}: compute: {reason}")
        env = self._environment(spec, sub, source)
        inputs = resolve_inputs(spec, self.data, base_dir, source, internal, principal)
        code = self._code(spec, sub.snapshot, source)
        if self._exists(spec.name):
            raise ResourceAlreadyExists(f"A job named '{spec.name}' already exists")
        outputs = {k: asdict(v) for k, v in spec.outputs.items()}
        if self.data is not None:
            outputs = {
                k: self.data.resolve_output(k, v, spec.name, principal, source)
                for k, v in outputs.items()
            }
        stored = {
            "command": spec.command,
            "description": spec.description,
            "experiment_name": spec.experiment_name,
            "tags": spec.tags,
            "inputs": inputs,
            "outputs": outputs,
            "environment_variables": spec.environment_variables,
            "timeout_seconds": spec.timeout_seconds,
            "instance_count": spec.instance_count,
            "distribution": spec.distribution,
            "max_retries": spec.max_retries,
            "services": spec.services,
            "environment": env,
            "code": code,
            "source": source,
            "user_id": principal.user_id if principal else None,
        }
        return Prepared(spec.name, spec.display_name, compute.name, stored)

    def record(
        self,
        job: Prepared,
        principal: Principal | None,
        reuse_key: str | None = None,
        reused_from: tuple[Job, str] | None = None,
    ) -> Job:
        """Record a prepared job and queue it; or, ``reused_from`` (an earlier job and why
        it stands in), record it Completed with that job's outputs, running nothing."""
        if reused_from is None:
            return self._record(job.name, job.display_name, job.compute, job.stored, principal,
                                reuse_key=reuse_key)  # fmt: skip
        origin, why = reused_from
        stored = {**job.stored, "outputs": origin.spec.get("outputs") or {},
                  "reused_from": origin.name}  # fmt: skip
        return self._record(job.name, job.display_name, job.compute, stored, principal,
                            reused=why)  # fmt: skip

    @staticmethod
    def _check_instance_user(compute: Compute, principal: Principal | None, source: str) -> None:
        """A compute instance runs jobs for its user only (its creator, or the user it was
        assigned to), as on Azure: others may see and manage it, not run work on it."""
        if compute.type != "computeinstance" or principal is None or compute.user is None:
            return
        if principal.name.lower() != compute.user.lower():
            raise PermissionDenied(
                f"{source}: compute: instance '{compute.name}' belongs to {compute.user}; only "
                "its user can submit jobs to it (create your own instance, or ask for one "
                "assigned to you)"
            )

    def resubmit(
        self,
        name: str,
        principal: Principal | None,
        new_name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Job:
        """The same job again under a new name (generated unless given): same command,
        environment and code snapshot (the studio's Re-submit; a schedule's rerun, with its
        tag). The compute must still exist."""
        old = self.store.get(name)
        if old.type == "pipeline":  # the same plan under a new parent: every step runs again
            stored = {**old.spec, "user_id": principal.user_id if principal else None}
            stored["tags"] = {**(old.spec.get("tags") or {}), **(tags or {})}
            stored["outputs"] = {k: _as_submitted(v) for k, v in stored["outputs"].items()}
            return self.record_parent(new_name or self.new_name(), old.display_name, stored,
                                      principal)  # fmt: skip
        compute = self.compute.get(old.compute)
        self._check_instance_user(compute, principal, f"job {name}")
        code = old.spec.get("code")
        if code and not self.has_snapshot(str(code["digest"])):
            raise InvalidState(
                f"Job {name}'s code snapshot {str(code['digest'])[:12]} is no longer on the "
                "server; submit the job file again"
            )
        if new_name is not None and self._exists(new_name):
            raise ResourceAlreadyExists(f"A job named '{new_name}' already exists")
        while new_name is None or self._exists(new_name):
            new_name = generated_name()
        outputs = old.spec.get("outputs") or {}
        if self.data is not None:  # written under the new job's name, as a new submission's
            outputs = {
                k: self.data.resolve_output(k, _as_submitted(o), new_name, principal, f"job {name}")
                for k, o in outputs.items()
            }
        stored = {
            **old.spec,
            "outputs": outputs,
            "user_id": principal.user_id if principal else None,
        }
        if tags:
            stored["tags"] = {**(old.spec.get("tags") or {}), **tags}
        return self._record(new_name, old.display_name, compute.name, stored, principal)

    def _record(
        self,
        name: str,
        display_name: str | None,
        compute: str,
        stored: dict[str, Any],
        principal: Principal | None,
        kind: str = "command",
        reuse_key: str | None = None,
        reused: str | None = None,
    ) -> Job:
        """Record a checked job: its MLflow run, its row, then queue it (or, ``reused``
        saying why, end it Completed at once: it stands in for an earlier job)."""
        experiment = self.tracking.get_or_create_experiment(stored["experiment_name"], principal)
        code = stored.get("code")
        env = stored["environment"]
        tags = {
            **(stored.get("tags") or {}),
            "mlflow.source.type": "JOB",
            "mlflow.source.name": stored["source"],
            "lapis.job.name": name,
            "lapis.job.compute": compute,
        }
        if code and code.get("git_commit"):
            tags["mlflow.source.git.commit"] = str(code["git_commit"])
        if reused:
            tags["lapis.job.reused_from"] = str(stored["reused_from"])
        run = self.tracking.create_run(
            experiment.experiment_id,
            run_name=display_name or name,
            tags=tags,
            principal=principal,
        )
        self.tracking.update_run(run.info.run_id, status="SCHEDULED")
        now = now_ms()
        with self.store.db.write() as conn:
            self.store.create(
                conn,
                {
                    "name": name,
                    "type": kind,
                    "run_id": run.info.run_id,
                    "experiment_id": int(experiment.experiment_id),
                    "display_name": display_name,
                    "compute": compute,
                    "spec": stored,
                    "environment": env["label"],
                    "environment_digest": env.get("digest"),
                    "snapshot_digest": code["digest"] if code else None,
                    "created_by": principal.name if principal else None,
                    "reuse_key": reuse_key,
                },
                now,
                completed=reused,
            )
        if reused:
            self.tracking.update_run(run.info.run_id, status="FINISHED", end_time=now)
            return self.get(name)
        waits = "waiting for a slot" if kind == "command" else "its steps start next"
        self.store.transition(name, JobStatus.QUEUED, time_ms=now, reason=waits)
        self.wake()
        return self.get(name)

    def new_name(self) -> str:
        name = generated_name()
        while self._exists(name):
            name = generated_name()
        return name

    def record_parent(
        self,
        name: str,
        display_name: str | None,
        stored: dict[str, Any],
        principal: Principal | None,
    ) -> Job:
        """A pipeline's parent job (lapis/jobs/pipelines.py moves it; no compute runs it)."""
        if self._exists(name):
            raise ResourceAlreadyExists(f"A job named '{name}' already exists")
        compute = str((stored.get("settings") or {}).get("default_compute") or "local")
        job = self._record(name, display_name, compute.removeprefix("azureml:"), stored,
                           principal, kind="pipeline")  # fmt: skip
        self.on_parent()
        return job

    def _exists(self, name: str) -> bool:
        try:
            self.store.get(name)
        except ResourceDoesNotExist:
            return False
        return True

    def _environment(self, spec: CommandJobSpec, sub: SubmitJob, source: str) -> dict[str, Any]:
        _, resolved = self.environments.resolve_sent(spec.environment, sub.sent_files(), source)
        if resolved.kind == "docker":
            self._check_snapshot(str(resolved.digest), source, "environment.build")
        return {
            "kind": resolved.kind,
            "label": resolved.label,
            "digest": resolved.digest,
            "image": resolved.image,
            "dockerfile": resolved.dockerfile,
            "spec": resolved.spec.canonical() if resolved.spec is not None else None,
        }

    def reading_asset(self, name: str) -> list[dict[str, Any]]:
        """Lineage: the jobs that read a version of data asset ``name``, newest first."""
        found = []
        for job in self.store.reading_asset(name):
            for input_name, item in (job.spec.get("inputs") or {}).items():
                asset = str(item.get("asset") or "")
                if asset.rpartition(":")[0].lower() == name.lower():
                    found.append({"job": job.name, "input": input_name, "version":
                                  asset.rpartition(":")[2], "status": job.status,
                                  "created_at": job.created_at})  # fmt: skip
        return found

    def output_source(self, job_name: str, output: str) -> dict[str, Any]:
        """Where a completed job kept an output (``azureml://jobs/<job>/outputs/<o>``):
        its datastore path, or its folder in the run's artifacts (``artifacts``: all)."""
        job = self.store.get(job_name)
        found = self.output_location(job, output)
        if job.status != JobStatus.COMPLETED.value:
            raise InvalidParameterValue(
                f"job {job_name} is {job.status}: its outputs are read once it has completed"
            )
        return found

    def output_location(self, job: Job, output: str) -> dict[str, Any]:
        """``{"datastore", "rel"}`` of an output whatever the job's state: its datastore
        path (every output since outputs went to the default datastore), or its folder
        in the run's artifacts (``artifacts``, and outputs of jobs stored before that)."""
        outputs = job.spec.get("outputs") or {}
        if output != "artifacts" and output not in outputs:
            known = ", ".join(outputs) or "none"
            raise ResourceDoesNotExist(
                f"job {job.name} has no output '{output}' (its outputs: {known})"
            )
        dest = outputs.get(output, {}).get("dest")
        if dest:
            return dict(dest)
        from lapis.artifacts.store import proxied_path

        root = proxied_path(self.tracking.get_run(job.run_id).info.artifact_uri)
        if root is None:
            raise InvalidParameterValue(f"job {job.name} keeps its artifacts outside this server")
        rel = root if output == "artifacts" else f"{root}/named-outputs/{output}"
        return {"datastore": ARTIFACTS, "rel": rel}

    def _code(
        self, spec: CommandJobSpec, snapshot: SnapshotRef | None, source: str
    ) -> dict[str, Any] | None:
        if spec.code is None:
            return None
        if snapshot is None or not snapshot.digest:
            raise InvalidParameterValue(
                f"{source}: code: '{spec.code}' must be uploaded as a snapshot first "
                "(the CLI and SDK do this)"
            )
        digest = check_digest(snapshot.digest)
        if not self.has_snapshot(digest):
            raise InvalidParameterValue(f"{source}: code: snapshot {digest[:12]} was not uploaded")
        return {**snapshot.model_dump(), "digest": digest}

    def _check_snapshot(self, digest: str, source: str, what: str) -> None:
        if not self.has_snapshot(check_digest(digest)):
            raise InvalidParameterValue(
                f"{source}: {what}: snapshot {digest[:12]} was not uploaded"
            )

    # --- reading ----------------------------------------------------------------------
    def find_by_run(self, run_id: str) -> Job | None:
        """The job whose MLflow run this is, if a job made it."""
        return self.store.find(run_id)

    def get(self, name: str, events: bool = True) -> Job:
        """A job; ``events=False`` skips its status history (one query less)."""
        return self.store.get(name, events=events)

    def list(
        self,
        status: str | None = None,
        compute: str | None = None,
        experiment_name: str | None = None,
        max_results: int = 50,
    ) -> list[Job]:
        statuses = None
        if status:
            wanted = [s.strip() for s in status.split(",") if s.strip()]
            known = {s.value.lower(): s.value for s in JobStatus}
            bad = [s for s in wanted if s.lower() not in known]
            if bad:
                raise InvalidParameterValue(
                    f"Unknown job status {', '.join(bad)}; known: {', '.join(known.values())}"
                )
            statuses = [known[s.lower()] for s in wanted]
        experiment_id = None
        if experiment_name:
            experiment_id = int(self.tracking.get_experiment_by_name(experiment_name).experiment_id)
        if compute:
            compute = self.compute.get(compute).name
        if not 1 <= max_results <= 1000:
            raise InvalidParameterValue("max_results must be between 1 and 1000")
        return self.store.search(
            statuses=statuses, compute=compute, experiment_id=experiment_id, limit=max_results
        )

    def job_dir(self, name: str) -> Path:
        return self.jobs_root / name

    def services(self, job: Job) -> builtins.list[dict[str, Any]]:
        """An interactive job's services: status, proxied URL or ssh command."""
        from lapis.compute import job_services

        folder = Path(str(job.handle["dir"])) if job.handle and job.handle.get("dir") else (
            self.job_dir(job.name))  # fmt: skip
        running = job.status == JobStatus.RUNNING.value
        return job_services.view(job.name, folder, job.spec.get("services") or {}, running,
                                 self.ssh_host)  # fmt: skip

    # --- cancel -----------------------------------------------------------------------
    def cancel(self, name: str, principal: Principal | None) -> Job:
        job = self.store.get(name)
        status = JobStatus(job.status)
        who = f" by {principal.name}" if principal else ""
        if status.is_terminal:
            raise InvalidState(f"Job {name} has already ended ({status.value}); nothing to cancel")
        now = now_ms()
        if status in (JobStatus.NOT_STARTED, JobStatus.QUEUED) and self.store.transition(
            name,
            JobStatus.CANCELED,
            time_ms=now,
            reason=f"canceled{who} before it started",
            expect=(JobStatus.NOT_STARTED, JobStatus.QUEUED),
        ):
            self.tracking.update_run(job.run_id, status="KILLED", end_time=now)
            return self.get(name)
        if status is not JobStatus.CANCEL_REQUESTED:
            self.store.transition(
                name, JobStatus.CANCEL_REQUESTED, time_ms=now, reason=f"cancel requested{who}"
            )
        self.on_cancel(name)  # the scheduler passes it to the job's backend
        return self.get(name)

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Per compute: jobs holding a slot, and jobs waiting in its queue."""
        return self.store.counts()

    # --- logs -------------------------------------------------------------------------
    def logs(self, name: str, cursor: str | None) -> tuple[Job, str, str]:
        """The job, its log text after ``cursor`` and the next cursor (empty before it starts)."""
        job = self.store.get(name)
        if job.handle is None:
            parse_cursor(cursor)  # a bad cursor is a 400 even before the job starts
            return job, "", cursor or "0:0"
        backend = backend_for(self.compute.get_or_local(job.compute))
        text, after = backend.logs(job.handle, cursor)
        return job, text, after


def _as_submitted(output: Mapping[str, Any]) -> dict[str, Any]:
    """An output as its job file gave it: where it went is worked out again for a new
    job (a default path names the job), and a data asset it registers gets its next
    version rather than the one the first run took."""
    return {k: v for k, v in output.items() if k not in ("dest", "uri", "version")}
