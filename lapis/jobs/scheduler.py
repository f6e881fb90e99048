"""The job scheduler: one thread in the server that moves jobs along.

Who owns what:
- the **service** inserts a job and puts it in ``Queued``;
- this **scheduler** takes queued jobs in submission order (``seq``) when
  their compute is ``Running`` and has a free slot (two per core), moves the
  job to ``Preparing`` and hands it to a launcher thread, which asks the
  compute's **backend** (``lapis.compute.base``) to stage and start it and
  stores the backend's opaque handle in ``jobs.handle``; for jobs that must
  wait it writes *why* into ``status_reason`` (slots busy, instance stopped);
- the **backend** reports ``Preparing``/``Starting``/``Running``/``Exited``
  events through ``poll(handle, cursor)``; the scheduler applies them, uploads
  logs while the job runs, and on ``Exited`` uploads outputs (``Finalizing``)
  from the folder ``collect(handle)`` gives and records the end
  (``Completed``/``Failed``/``Canceled``) on the job and its MLflow run
  (lapis/jobs/ending.py);
- a stale heartbeat makes a job ``NotResponding``; a job whose backend says it
  is gone (``alive`` is False) without an ``Exited`` event fails with that reason.

The scheduler never asks which type of compute it holds: everything that differs
between this host, an instance and a cluster is behind the backend. Pipeline parents
hold no slot and have no backend: lapis/jobs/pipelines.py moves them.

At start-up the scheduler **reconciles**: every job that was active when the server
stopped is re-attached through its stored handle (its events are replayed from the
start; replays that would move a job backwards are ignored), so a job that finished
while the server was down gets its final status and artifacts. A job caught between
``Preparing`` and a stored handle is launched again.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lapis.artifacts.store import ArtifactStore
from lapis.auth.service import AuthService
from lapis.compute import workdir
from lapis.compute.base import ComputeBackend, Handle, LaunchContext
from lapis.compute.registry import BackendRegistry, default_registry
from lapis.entities.auth import JobScope
from lapis.entities.compute import Compute
from lapis.entities.job_status import JobStatus
from lapis.entities.jobs import Job
from lapis.errors import LapisError, ResourceDoesNotExist
from lapis.jobs.ending import JobEnding
from lapis.jobs.service import JobService
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
    compute: str
    handle: Handle | None = None  # None while the launcher thread is starting the job
    cursor: int = 0
    ran: bool = False  # the job's own process started (a Running event was seen)
    heartbeat_at: float | None = None
    launched: float = field(default_factory=time.monotonic)
    exited: bool = False
    cancel_sent: bool = False
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
        backends: BackendRegistry | None = None,
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
        self.backends = backends or default_registry()
        self.ending = JobEnding(jobs, auth, artifacts)
        self.tracked: dict[str, Tracked] = {}
        self._reasons: dict[str, str] = {}
        self._finalizing: set[str] = set()
        self._cancels: set[str] = set()  # cancel requests not yet passed to a backend
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="lapis-finalize")
        # staging copies code and inputs: never on the scheduler's own thread
        self._launcher = ThreadPoolExecutor(2, thread_name_prefix="lapis-launch")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_compute_tick = 0.0
        self.clocks: list[Callable[[int], None]] = []  # run with the compute tick
        jobs.wake = self._wake.set
        jobs.on_cancel = self._cancel_requested
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
        self._launcher.shutdown(wait=True)
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
            for clock in self.clocks:  # job schedules (lapis/jobs/schedules.py)
                with contextlib.suppress(Exception):  # never stops the others; logs itself
                    clock(now_ms())
        if queued:
            self._dispatch(running)
        self._idle = not running and not queued
        self._poll()

    # --- start-up -----------------------------------------------------------------
    def reconcile(self) -> None:
        """Re-attach to every job that was active when the server last stopped."""
        now = now_ms()
        for job in self.store.slotted(S.NOT_STARTED.value):
            self.store.transition(job.name, S.QUEUED, time_ms=now, reason="queued at restart")
        for job in self.store.slotted(*ACTIVE):
            if job.handle is None:  # the server stopped while starting it: start it again
                self._relaunch(job)
                continue
            self.tracked[job.name] = Tracked(compute=job.compute, handle=job.handle)
            if job.status == S.CANCEL_REQUESTED.value:
                self._cancels.add(job.name)
            log.info("re-attached to job %s (%s)", job.name, job.status)
        self._poll()

    def _relaunch(self, job: Job) -> None:
        try:
            compute = self.compute.get(job.compute)
        except ResourceDoesNotExist:
            self._fail(job, f"compute '{job.compute}' no longer exists")
            return
        log.info("starting job %s again (the server stopped while starting it)", job.name)
        self._hand_to_launcher(job, compute)

    # --- queue --------------------------------------------------------------------
    def _dispatch(self, running: dict[str, int]) -> None:
        waiting = self.store.slotted(S.QUEUED.value)
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
        elif compute.type == "amlcompute":  # one job per node
            reason = (
                f"all {compute.slots} node{'s' if compute.slots > 1 else ''} of cluster "
                f"{compute.name} are busy (max_instances {compute.slots})"
            )
            if ahead:
                reason += f"; {ahead} job{'s' if ahead > 1 else ''} ahead in the queue"
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

    def _fail(self, job: Job, reason: str) -> None:
        now = now_ms()
        current = S(self.store.get(job.name).status)
        if current.is_terminal:
            return
        outcome = S.CANCELED if current is S.CANCEL_REQUESTED else S.FAILED
        if self.store.transition(job.name, outcome, time_ms=now, reason=reason):
            self.jobs.tracking.update_run(job.run_id, status=outcome.mlflow_status, end_time=now)

    def _launch(self, job: Job, compute: Compute) -> bool:
        self._reasons.pop(job.name, None)
        now = now_ms()
        if not self.store.transition(
            job.name,
            S.PREPARING,
            time_ms=now,
            reason=f"starting on {compute.name}",
            expect=(S.QUEUED,),
            job_dir=str(self.jobs.job_dir(job.name)),
        ):
            return False  # canceled meanwhile
        self.compute.touch(compute.name, now)
        self._hand_to_launcher(job, compute)
        return True

    def _hand_to_launcher(self, job: Job, compute: Compute) -> None:
        self.tracked[job.name] = Tracked(compute=compute.name)
        self._launcher.submit(self._launch_on_worker, job, compute)

    def _launch_on_worker(self, job: Job, compute: Compute) -> None:
        """Stage and start one job through its backend (a launcher thread)."""
        try:
            handle = self._backend(compute).launch(self._context(job, compute))
        except Exception as exc:
            if not isinstance(exc, (OSError, LapisError)):
                log.exception("starting job %s failed", job.name)
            self.tracked.pop(job.name, None)
            with contextlib.suppress(Exception):
                self._fail(job, f"could not prepare the job folder: {exc}")
                self.auth.revoke_job_tokens(job.name)
            self._wake.set()
            return
        self.store.set_handle(job.name, handle)
        tracked = self.tracked.get(job.name)
        if tracked is not None:
            tracked.handle = handle
            tracked.launched = time.monotonic()
        self._wake.set()

    def _context(self, job: Job, compute: Compute) -> LaunchContext:
        folder = self.jobs.job_dir(job.name)
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
        elif env_spec["kind"] == "docker":  # built from the staged context, run in a container
            environment["image"] = env_spec["image"]
            environment["dockerfile"] = env_spec.get("dockerfile") or "Dockerfile"
            environment["context"] = env_spec["digest"]
        else:  # the supervisor layers a thin environment over this interpreter
            environment["python"] = self.python
        return LaunchContext(
            job=job,
            compute=compute,
            job_dir=folder,
            snapshots=self.jobs.snapshots,
            python=self.python,
            environment=environment,
            env=workdir.job_environment(job, compute, self.url, token, self.ca_bundle),
            sandbox=self._sandbox(folder),
            data=self.jobs.data.sources(job.spec) if self.jobs.data is not None else {},
        )

    def _backend(self, compute: Compute) -> ComputeBackend:
        return self.backends.for_compute(compute)

    def _cancel_requested(self, name: str) -> None:
        self._cancels.add(name)
        self._wake.set()

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
        if t.handle is None:
            return  # the launcher has not started it yet
        backend = self._backend(self.compute.get_or_local(t.compute))
        if name in self._cancels:
            self._cancels.discard(name)
            backend.cancel(t.handle)
            t.cancel_sent = True
        if self._read(name, t, backend):
            return
        mono = time.monotonic()
        if mono - t.last_health < HEALTH_SECONDS:
            return  # the checks below cost a query and a process lookup: not every 20 ms
        t.last_health = mono
        job = self.store.get(name)
        status = S(job.status)
        if status is S.CANCEL_REQUESTED and not t.cancel_sent:
            backend.cancel(t.handle)
            t.cancel_sent = True
        if not backend.alive(t.handle):
            if not self._read(name, t, backend):  # it may have just written Exited
                self._lost(name, t, backend)
            return
        age = self._heartbeat_age(t)
        if status is S.PROVISIONING:
            return  # no supervisor yet: it starts on the node being provisioned
        if age > HEARTBEAT_STALE_MS and status is not S.NOT_RESPONDING:
            self.store.transition(
                name,
                S.NOT_RESPONDING,
                time_ms=now_ms(),
                reason=f"no heartbeat from the job's supervisor for {age // 1000} s",
            )
        elif age <= HEARTBEAT_STALE_MS and status is S.NOT_RESPONDING:
            back = S.RUNNING if t.ran else S.STARTING
            self.store.transition(name, back, time_ms=now_ms(), reason="heartbeat is back")
        if status is S.RUNNING and time.monotonic() - t.last_log_sync > LOG_SYNC_SECONDS:
            t.last_log_sync = time.monotonic()
            self.ending.sync_logs(job, backend.collect(t.handle), t.synced)

    def _read(self, name: str, t: Tracked, backend: ComputeBackend) -> bool:
        """Apply the backend's new events; True once the job has exited."""
        assert t.handle is not None
        progress = backend.poll(t.handle, t.cursor)
        t.cursor = progress.cursor
        if progress.heartbeat_at is not None:
            t.heartbeat_at = progress.heartbeat_at
        for event in progress.events:
            self._apply(name, t, event)
            if t.exited:
                return True
        return False

    @staticmethod
    def _heartbeat_age(t: Tracked) -> int:
        if t.heartbeat_at is not None:
            return int((time.time() - t.heartbeat_at) * 1000)
        return int((time.monotonic() - t.launched) * 1000)

    def _apply(self, name: str, t: Tracked, event: dict[str, Any]) -> None:
        status = event.get("status")
        when = int(event.get("time") or now_ms())
        if status == "Provisioning":  # a cluster starting the job's nodes
            self.store.transition(
                name,
                S.PROVISIONING,
                time_ms=when,
                reason=event.get("reason"),
                expect=(S.PREPARING, S.PROVISIONING, S.NOT_RESPONDING),
            )
        elif status == "Preparing":
            self.store.transition(
                name,
                S.PREPARING,
                time_ms=when,
                reason=event.get("reason"),
                expect=(S.PREPARING, S.PROVISIONING, S.NOT_RESPONDING),
            )
            if event.get("digest"):
                self.jobs.environments.record_build(str(event["digest"]), "Building")
        elif status == "Built":
            if not event.get("cache_hit"):
                self.jobs.environments.record_build(str(event["digest"]), "Succeeded")
        elif status == "Starting":
            self.store.transition(
                name,
                S.STARTING,
                time_ms=when,
                expect=(S.PREPARING, S.PROVISIONING, S.NOT_RESPONDING),
            )
        elif status == "Running":
            t.ran = True
            if self.store.transition(
                name, S.RUNNING, time_ms=when, expect=(S.STARTING, S.NOT_RESPONDING)
            ):
                job = self.store.get(name)
                self.jobs.tracking.update_run(job.run_id, status="RUNNING")
        elif status == "Exited":
            t.exited = True
            self._finalizing.add(name)
            self._pool.submit(self._finalize_safely, name, t, event)

    def _lost(self, name: str, t: Tracked, backend: ComputeBackend) -> None:
        assert t.handle is not None
        why = backend.lost_reason(t.handle)
        backend.cancel(t.handle, force=True)
        if why and self._retry(name, t, why, backend.preempted(t.handle)):
            return
        t.exited = True
        self._finalizing.add(name)
        event = {
            "outcome": "Failed",
            "code": None,
            "reason": why
            or "the job's supervisor process ended without reporting an exit "
            "(killed, or the host restarted)",
            "time": now_ms(),
        }
        self._pool.submit(self._finalize_safely, name, t, event)

    def _retry(self, name: str, t: Tracked, why: str, preempted: bool) -> bool:
        """Back to the queue after a lost node, when the job allows it (lapis/jobs/retry.py)."""
        from lapis.jobs import retry

        if not retry.requeue(self.store, self.jobs.job_dir(name), name, why, preempted):
            return False
        log.warning("job %s: %s; queued again", name, why)
        self.tracked.pop(name, None)
        self._wake.set()
        return True

    # --- the end ------------------------------------------------------------------
    def _finalize_safely(self, name: str, t: Tracked, event: dict[str, Any]) -> None:
        try:
            assert t.handle is not None
            compute = self.compute.get_or_local(t.compute)
            self.ending.finish(name, compute, self._backend(compute).collect(t.handle), event)
        finally:
            self.tracked.pop(name, None)
            self._cancels.discard(name)
            self._finalizing.discard(name)
            self._wake.set()

    def _sandbox(self, folder: Path) -> dict[str, Any] | None:
        """What the job may not reach (lapis/compute/sandbox.py): the home but its own folder
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
