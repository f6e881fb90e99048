"""The end of a job: what the scheduler does once a job has exited (or was lost).

Who owns what: the scheduler decides *that* a job ended (an ``Exited`` event, or
a backend that says it is gone) and hands the folder ``collect`` gave it to
:meth:`JobEnding.finish`, on a worker thread; this module records the end:

1. ``Finalizing`` (unless the job was canceled), with the reason;
2. metrics the job's SDK spooled while the server was away are replayed;
3. outputs, ``./logs`` and the job's own logs are uploaded into the run's
   artifacts (links and non-regular files are skipped and said so in the log);
4. the final status on the job and its MLflow run — a failed upload turns a
   ``Completed`` job into ``Failed``, and a failed environment build is
   recorded against the environment;
5. the compute's idle clock is touched, the job's tokens revoked, and the
   copies of code and inputs dropped once everything is kept.

Any error on the way still leaves the job in a final status, never a live one.
While a job runs, :meth:`sync_logs` uploads what changed in its logs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lapis.artifacts.store import ArtifactStore, proxied_path
from lapis.auth.service import AuthService
from lapis.compute import workdir
from lapis.compute.supervisor import STD_LOG
from lapis.compute.workdir import SPOOL
from lapis.entities.compute import Compute
from lapis.entities.job_status import ALLOWED, JobStatus
from lapis.entities.jobs import Job
from lapis.errors import LapisError
from lapis.jobs.service import JobService
from lapis.jobs.spool import replay_spool
from lapis.util import now_ms

log = logging.getLogger("lapis.jobs")
S = JobStatus


class JobEnding:
    def __init__(self, jobs: JobService, auth: AuthService, artifacts: ArtifactStore) -> None:
        self.jobs = jobs
        self.store = jobs.store
        self.auth = auth
        self.artifacts = artifacts

    def finish(self, name: str, compute: Compute, folder: Path, event: dict[str, Any]) -> None:
        """Record the end described by ``event`` (the supervisor's ``Exited`` or a loss)."""
        try:
            self._finish(name, compute, folder, event)
        except Exception as exc:
            log.exception("finalizing job %s failed", name)
            with contextlib.suppress(Exception):  # never leave a job hanging in a live status
                job = self.store.get(name)
                if not S(job.status).is_terminal:
                    now = now_ms()
                    self.store.transition(
                        name, S.FAILED, time_ms=now, reason=f"recording the job's end failed: {exc}"
                    )
                    self.jobs.tracking.update_run(job.run_id, status="FAILED", end_time=now)

    def _finish(self, name: str, compute: Compute, folder: Path, event: dict[str, Any]) -> None:
        job = self.store.get(name)
        status = S(job.status)
        if status.is_terminal:
            return
        outcome = S(str(event.get("outcome") or "Failed"))
        reason = str(event.get("reason") or "")
        if outcome is not S.CANCELED and S.FINALIZING in ALLOWED[status]:
            self.store.transition(name, S.FINALIZING, time_ms=now_ms(), reason="uploading outputs")
        upload_error = None
        try:
            replay_spool(self.jobs.tracking, job, folder / SPOOL)
        except Exception:  # the files stay; the next finalize attempt tries again
            log.exception("replaying the spooled metrics of job %s failed", name)
        try:
            self._upload_all(job, folder)
        except Exception as exc:  # the job's result stands; say what could not be kept
            upload_error = f"uploading outputs failed: {exc}"
            log.exception("upload for job %s failed", name)
        if upload_error and outcome is S.COMPLETED:
            outcome, reason = S.FAILED, upload_error
        if outcome is S.COMPLETED and self.jobs.data is not None:
            try:  # outputs with name: become data assets made by this job
                made = self.jobs.data.register_outputs(name, job.spec, job.created_by)
            except LapisError as exc:
                outcome, reason = S.FAILED, f"registering an output as a data asset failed: {exc}"
            else:
                self._say(folder, [f"registered data asset {m}" for m in made])
        if event.get("digest") and outcome is S.FAILED and "environment build" in reason:
            self.jobs.environments.record_build(
                str(event["digest"]), "Failed", error=reason.split("\n", 1)[0]
            )
        now = now_ms()
        code = event.get("code")
        self.store.transition(
            name,
            outcome,
            time_ms=now,
            reason=reason,
            exit_code=int(code) if code is not None else None,
        )
        self.jobs.tracking.update_run(job.run_id, status=outcome.mlflow_status, end_time=now)
        self.jobs.compute.touch(compute.name, now)
        self.auth.revoke_job_tokens(name)
        if upload_error is None:
            workdir.discard_copies(folder)

    def sync_logs(self, job: Job, folder: Path, synced: dict[str, tuple[int, int]]) -> None:
        """Upload what changed in ``./logs`` and the job's log while it runs."""
        try:
            root = self._run_root(job)
            for local, prefix in workdir.live_folders(folder):
                workdir.upload_tree(self.artifacts, local, f"{root}/{prefix}", synced)
        except Exception:
            log.exception("syncing logs of %s failed", job.name)

    def _run_root(self, job: Job) -> str:
        run = self.jobs.tracking.get_run(job.run_id)
        rel = proxied_path(run.info.artifact_uri)
        if rel is None:
            raise LapisError(f"run {job.run_id} stores artifacts outside this server")
        return rel

    def _upload_all(self, job: Job, folder: Path) -> None:
        root = self._run_root(job)
        log_path = folder / STD_LOG

        def skipper(prefix: str) -> Callable[[str], None]:
            def skipped(line: str) -> None:  # said in the job's own log, uploaded after this
                with open(log_path, "a") as fh:
                    fh.write(f"[lapis] {prefix}/{line}\n")

            return skipped

        for out_name, out in (job.spec.get("outputs") or {}).items():
            if out.get("dest") and self.jobs.data is not None:  # to its datastore path
                local = folder / "named-outputs" / out_name
                count = (
                    self.jobs.data.upload_output(
                        out["dest"], local, skipped=skipper(f"named-outputs/{out_name}")
                    )
                    if local.is_dir() and not local.is_symlink()
                    else 0
                )
                self._say(folder, [f"output {out_name}: {count} files written to {out['uri']}"])
        for local, prefix in workdir.artifact_folders(job, folder):
            workdir.upload_tree(self.artifacts, local, f"{root}/{prefix}", skipped=skipper(prefix))

    @staticmethod
    def _say(folder: Path, lines: list[str]) -> None:
        """A line in the job's own log (``[lapis] …``), as the upload's skips are."""
        if not lines:
            return
        with open(folder / STD_LOG, "a") as fh:
            for line in lines:
                fh.write(f"[lapis] {line}\n")
