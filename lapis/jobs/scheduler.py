"""The job scheduler: one thread in the server that moves jobs along.

Who owns what:
- the **service** inserts a job and puts it in ``Queued``;
- this **scheduler** takes queued jobs in submission order (``seq``) when
  their compute is ``Running`` and has a free slot (two per core), prepares
  the job folder, starts a supervisor through the compute's backend, and
  moves the job to ``Preparing``; for jobs that must wait it writes *why*
  into ``status_reason`` (slots busy, instance stopped);
- the **supervisor** reports ``Preparing``/``Starting``/``Running``/``Exited``
  through ``events.jsonl``; the scheduler applies those events, uploads logs
  while the job runs, and on ``Exited`` uploads outputs (``Finalizing``) and
  records the end (``Completed``/``Failed``/``Canceled``) on the job and its
  MLflow run;
- a stale heartbeat makes a job ``NotResponding``; a supervisor that vanished
  without an ``Exited`` event fails its job with that reason.

At start-up the scheduler **reconciles**: every job that was active when the
server stopped is re-attached (its events are replayed from the start of the
file; replays that would move a job backwards are ignored), so a job that
finished while the server was down gets its final status and artifacts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lapis.artifacts.store import ArtifactStore, proxied_path
from lapis.auth.service import AuthService
from lapis.compute.base import LaunchContext, backend_for
from lapis.entities.auth import JobScope
from lapis.entities.compute import Compute
from lapis.entities.job_status import ALLOWED, JobStatus
from lapis.entities.jobs import Job
from lapis.errors import LapisError, ResourceDoesNotExist
from lapis.jobs import workdir
from lapis.jobs.service import JobService
from lapis.jobs.spool import SPOOL, replay_spool
from lapis.jobs.supervisor import HEARTBEAT, JOB_FILE, STD_LOG, read_events
from lapis.store.sql.jobs import ACTIVE
from lapis.util import now_ms

log = logging.getLogger("lapis.jobs")
S = JobStatus
HEARTBEAT_STALE_MS = 10_000
LOG_SYNC_SECONDS = 2.0
HEALTH_SECONDS = 0.25  # liveness/heartbeat checks per job; events are read every tick
COMPUTE_TICK_SECONDS = 0.1
IDLE_INTERVAL = 0.5


@dataclass
class Tracked:
    handle: dict[str, Any]
    compute: str
    offset: int = 0
    child_pid: int | None = None
    launched: float = field(default_factory=time.monotonic)
    exited: bool = False
    last_log_sync: float = 0.0
    last_health: float = 0.0
    synced: dict[str, tuple[int, int]] = field(default_factory=dict)


class JobScheduler:
    def __init__(
        self,
        jobs: JobService,
        auth: AuthService,
        artifacts: ArtifactStore,
        url: str,
        python: str = sys.executable,
        interval: float = 0.05,
        sandbox: bool = True,
        ca_bundle: str | None = None,
    ) -> None:
        self.jobs = jobs
        self.store = jobs.store
        self.compute = jobs.compute
        self.auth = auth
        self.artifacts = artifacts
        self.url = url
        self.python = python
        self.interval = interval
        self.sandbox = sandbox
        self.ca_bundle = ca_bundle  # jobs trust a self-signed server certificate through it
        self.tracked: dict[str, Tracked] = {}
        self._reasons: dict[str, str] = {}
        self._finalizing: set[str] = set()
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="lapis-finalize")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_compute_tick = 0.0
        jobs.wake = self._wake.set
        jobs.compute.wake = self._wake.set
        self._idle = False

    # --- thread -------------------------------------------------------------------
    def start(self) -> None:
        self.reconcile()
        self._thread = threading.Thread(target=self._loop, name="lapis-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # one bad tick must not stop scheduling
                log.exception("scheduler tick failed")
            # jobs in flight are watched closely; an idle server only keeps the clocks
            # (idle shutdown, schedules) and is woken at once by submissions and changes
            if self.tracked:
                pause = self.interval / 2.5
            elif self._idle:
                pause = IDLE_INTERVAL
            else:
                pause = self.interval
            self._wake.wait(pause)
            self._wake.clear()

    def tick(self) -> None:
        running, queued = self.store.counts()
        mono = time.monotonic()
        if mono - self._last_compute_tick >= COMPUTE_TICK_SECONDS:
            self._last_compute_tick = mono
            self.compute.tick(now_ms(), running, queued)
        if queued:
            self._dispatch(running)
        self._idle = not running and not queued
        self._poll()

    # --- start-up -----------------------------------------------------------------
    def reconcile(self) -> None:
        """Re-attach to every job that was active when the server last stopped."""
        now = now_ms()
        for job in self.store.search(statuses=[S.NOT_STARTED.value], ascending=True, limit=10_000):
            self.store.transition(job.name, S.QUEUED, time_ms=now, reason="queued at restart")
        for job in self.store.search(statuses=list(ACTIVE), ascending=True, limit=10_000):
            handle = {"pid": job.supervisor_pid, "start": job.supervisor_start}
            self.tracked[job.name] = Tracked(handle=handle, compute=job.compute)
            log.info("re-attached to job %s (%s)", job.name, job.status)
        self._poll()

    # --- queue --------------------------------------------------------------------
    def _dispatch(self, running: dict[str, int]) -> None:
        waiting = self.store.search(statuses=[S.QUEUED.value], ascending=True, limit=10_000)
        by_compute: dict[str, list[Job]] = {}
        for job in waiting:
            by_compute.setdefault(job.compute, []).append(job)
        for name, queue in by_compute.items():
            try:
                compute = self.compute.get(name)
            except ResourceDoesNotExist:
                for job in queue:
                    self._fail_waiting(job, f"compute '{name}' no longer exists")
                continue
            busy = running.get(compute.name, 0)
            free = max(0, compute.slots - busy) if compute.runs_jobs else 0
            starting, left = queue[:free], queue[free:]
            # Reasons first, launches second: a reader that sees the slots taken
            # never sees the jobs still waiting explained by the previous state.
            for position, job in enumerate(left):
                self._explain(job, compute, busy + len(starting), position)
            for job in starting:
                self._launch(job, compute)

    def _explain(self, job: Job, compute: Compute, busy: int, ahead: int) -> None:
        if not compute.runs_jobs:
            reason = f"instance {compute.name} is {compute.state.lower()}"
            if compute.state == "Stopped":
                reason += f"; start it with `lapis compute start {compute.name}`"
        else:
            reason = f"{busy}/{compute.slots} slots busy on {compute.name}"
            if ahead:
                reason += f"; {ahead} job{'s' if ahead > 1 else ''} ahead in the queue"
        if self._reasons.get(job.name) != reason:
            self._reasons[job.name] = reason
            self.store.set_reason(job.name, reason, [S.QUEUED.value])

    def _fail_waiting(self, job: Job, reason: str) -> None:
        now = now_ms()
        if self.store.transition(
            job.name, S.FAILED, time_ms=now, reason=reason, expect=(S.QUEUED,)
        ):
            self.jobs.tracking.update_run(job.run_id, status="FAILED", end_time=now)

    def _launch(self, job: Job, compute: Compute) -> bool:
        self._reasons.pop(job.name, None)
        folder = self.jobs.job_dir(job.name)
        try:
            prepared = workdir.prepare(job, folder, self.jobs.snapshots)
        except (OSError, LapisError) as exc:
            self._fail_waiting(job, f"could not prepare the job folder: {exc}")
            return False
        token = None
        user_id = job.spec.get("user_id")
        if user_id:
            scope = JobScope(job.name, job.run_id, str(job.experiment_id))
            token = self.auth.issue_job_token(str(user_id), scope)
        env_spec = job.spec["environment"]
        environment: dict[str, Any] = {
            "kind": env_spec["kind"],
            "label": env_spec["label"],
            "root": str(self.jobs.environments.envs_root),
        }
        if env_spec["kind"] == "built":
            environment["spec"] = env_spec["spec"]
        else:  # the supervisor layers a thin environment over this interpreter
            environment["python"] = self.python
        workdir.write_job_file(
            folder,
            {
                "name": job.name,
                "command": prepared.command,
                "environment": environment,
                "env": workdir.job_environment(
                    job, compute, self.url, token, prepared, self.ca_bundle, str(folder / SPOOL)
                ),
                "cpu_set": list(compute.cpu_set),
                "memory_limit_bytes": compute.memory_limit_bytes
                if compute.type != "local"
                else None,
                "timeout_seconds": job.spec.get("timeout_seconds"),
                "sandbox": self._sandbox(folder),
            },
        )
        now = now_ms()
        if not self.store.transition(
            job.name,
            S.PREPARING,
            time_ms=now,
            reason=f"starting on {compute.name}",
            expect=(S.QUEUED,),
            job_dir=str(folder),
        ):
            return False  # canceled meanwhile
        backend = backend_for(compute)
        handle = backend.launch(
            LaunchContext(job_name=job.name, job_dir=folder, compute=compute, python=self.python)
        )
        self.store.set(job.name, supervisor_pid=handle["pid"], supervisor_start=handle["start"])
        self.tracked[job.name] = Tracked(handle=handle, compute=compute.name)
        self.compute.touch(compute.name, now)
        return True

    # --- watching -----------------------------------------------------------------
    def _poll(self) -> None:
        for name, t in list(self.tracked.items()):
            if name in self._finalizing:
                continue
            try:
                self._poll_one(name, t)
            except ResourceDoesNotExist:
                self.tracked.pop(name, None)

    def _poll_one(self, name: str, t: Tracked) -> None:
        folder = self.jobs.job_dir(name)
        events, t.offset = read_events(folder, t.offset)
        for event in events:
            self._apply(name, t, event)
            if t.exited:
                return
        mono = time.monotonic()
        if mono - t.last_health < HEALTH_SECONDS:
            return  # the checks below cost a query and a process lookup: not every 20 ms
        t.last_health = mono
        job = self.store.get(name)
        status = S(job.status)
        compute = self.compute_or_local(t.compute)
        backend = backend_for(compute)
        if not backend.alive(t.handle):
            events, t.offset = read_events(folder, t.offset)  # it may have just written Exited
            for event in events:
                self._apply(name, t, event)
            if not t.exited:
                self._lost(name, t, backend)
            return
        age = self._heartbeat_age(folder, t)
        if age > HEARTBEAT_STALE_MS and status is not S.NOT_RESPONDING:
            self.store.transition(
                name,
                S.NOT_RESPONDING,
                time_ms=now_ms(),
                reason=f"no heartbeat from the job's supervisor for {age // 1000} s",
            )
        elif age <= HEARTBEAT_STALE_MS and status is S.NOT_RESPONDING:
            back = S.RUNNING if t.child_pid else S.STARTING
            self.store.transition(name, back, time_ms=now_ms(), reason="heartbeat is back")
        if status is S.RUNNING and time.monotonic() - t.last_log_sync > LOG_SYNC_SECONDS:
            t.last_log_sync = time.monotonic()
            self._sync_logs(job, folder, t)

    def compute_or_local(self, name: str) -> Compute:
        try:
            return self.compute.get(name)
        except ResourceDoesNotExist:
            return self.compute.get("local")

    @staticmethod
    def _heartbeat_age(folder: Path, t: Tracked) -> int:
        try:
            return int((time.time() - (folder / HEARTBEAT).stat().st_mtime) * 1000)
        except FileNotFoundError:
            return int((time.monotonic() - t.launched) * 1000)

    def _apply(self, name: str, t: Tracked, event: dict[str, Any]) -> None:
        status = event.get("status")
        when = int(event.get("time") or now_ms())
        if status == "Preparing":
            self.store.transition(
                name,
                S.PREPARING,
                time_ms=when,
                reason=event.get("reason"),
                expect=(S.PREPARING, S.NOT_RESPONDING),
            )
            if event.get("digest"):
                self.jobs.environments.record_build(str(event["digest"]), "Building")
        elif status == "Built":
            if not event.get("cache_hit"):
                self.jobs.environments.record_build(str(event["digest"]), "Succeeded")
        elif status == "Starting":
            self.store.transition(
                name, S.STARTING, time_ms=when, expect=(S.PREPARING, S.NOT_RESPONDING)
            )
        elif status == "Running":
            t.child_pid = int(event["pid"])
            if self.store.transition(
                name, S.RUNNING, time_ms=when, expect=(S.STARTING, S.NOT_RESPONDING)
            ):
                job = self.store.get(name)
                self.jobs.tracking.update_run(job.run_id, status="RUNNING")
        elif status == "Exited":
            t.exited = True
            self._finalizing.add(name)
            self._pool.submit(self._finalize_safely, name, t, event)

    def _lost(self, name: str, t: Tracked, backend: Any) -> None:
        backend.terminate(t.handle, t.child_pid)
        t.exited = True
        self._finalizing.add(name)
        event = {
            "outcome": "Failed",
            "code": None,
            "reason": "the job's supervisor process ended without reporting an exit "
            "(killed, or the host restarted)",
            "time": now_ms(),
        }
        self._pool.submit(self._finalize_safely, name, t, event)

    # --- the end ------------------------------------------------------------------
    def _finalize_safely(self, name: str, t: Tracked, event: dict[str, Any]) -> None:
        try:
            self._finalize(name, t, event)
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
        finally:
            self.tracked.pop(name, None)
            self._finalizing.discard(name)
            self._wake.set()

    def _finalize(self, name: str, t: Tracked, event: dict[str, Any]) -> None:
        job = self.store.get(name)
        status = S(job.status)
        if status.is_terminal:
            return
        outcome = S(str(event.get("outcome") or "Failed"))
        reason = str(event.get("reason") or "")
        if outcome is not S.CANCELED and S.FINALIZING in ALLOWED[status]:
            self.store.transition(name, S.FINALIZING, time_ms=now_ms(), reason="uploading outputs")
        folder = self.jobs.job_dir(name)
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
        self.compute.touch(t.compute, now)
        self._revoke_token(folder)
        if upload_error is None:
            workdir.discard_copies(folder)

    def _sandbox(self, folder: Path) -> dict[str, Any] | None:
        """What the job may not reach (lapis/jobs/sandbox.py): the home but its own folder
        and the environments; a local artifact root kept elsewhere. None: switched off."""
        if not self.sandbox:
            return None
        deny = [str(self.jobs.home)]
        if self.artifacts.is_local:
            deny.append(self.artifacts.root)
        return {
            "deny": deny,
            "allow": [str(folder), str(self.jobs.environments.envs_root)],
            "read_only": [self.ca_bundle] if self.ca_bundle else [],
        }

    def _revoke_token(self, folder: Path) -> None:
        """The job's token dies with the job: leftover children cannot write to its run."""
        try:
            token = json.loads((folder / JOB_FILE).read_text())["env"].get("LAPIS_TOKEN")
        except (OSError, ValueError, KeyError):
            return
        if token:
            self.auth.revoke(token)

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
                with open(log_path, "a") as log:
                    log.write(f"[lapis] {prefix}/{line}\n")

            return skipped

        for local, prefix in workdir.artifact_folders(job, folder):
            workdir.upload_tree(self.artifacts, local, f"{root}/{prefix}", skipped=skipper(prefix))

    def _sync_logs(self, job: Job, folder: Path, t: Tracked) -> None:
        """Upload what changed in ``./logs`` and the job's log while it runs."""
        try:
            root = self._run_root(job)
            for local, prefix in workdir.live_folders(folder):
                workdir.upload_tree(self.artifacts, local, f"{root}/{prefix}", t.synced)
        except Exception:
            log.exception("syncing logs of %s failed", job.name)
