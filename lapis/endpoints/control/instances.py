"""The instance manager: keeps every deployment's instance processes as its record says.

One thread, started by the server that serves the API (``Workspace.start_serving``),
reconciles the ``online_deployments`` rows with the processes it runs, a few
times a second and at once when woken (a create, update or delete, a probe
that changed its mind, the data plane reporting a failed connection):

- **prepare** the row's ``generation`` (``lapis.endpoints.control.generation``: model,
  code, environment) on a worker thread — an environment build can take minutes
  and must not hold up other deployments;
- **start** ``instance_count`` processes of it (``instance_process``) and give
  each a routable :class:`~lapis.endpoints.data.routing.Instance` once its port is known;
- **restart** one that exits, logging ``instance 1 exited (code -9); restarting,
  restart #1`` in the deployment log, with a back-off when it keeps dying;
- **state**: ``Creating``/``Updating`` → ``Succeeded`` once every instance of the
  generation is ready, ``Failed`` (with the reason: a build error, the tail of a
  failed ``init()``) otherwise; an update that fails leaves the old generation serving;
- **roll over**: when the new generation is ready the old instances are marked
  draining (no new requests) and stopped once ``in_flight`` is 0, or after the
  request timeout, so no request in flight fails;
- **publish** each endpoint's :class:`~lapis.endpoints.data.routing.EndpointRoute`
  (keys, traffic, deployments and their instances), re-using the same
  ``Instance`` objects while their processes live.

The manager thread alone starts and stops processes. Instances are recorded
in ``deployment_instances``; at start-up any recorded process still running
(same pid *and* start time) is ended before fresh ones start, and at shutdown
every instance is stopped.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lapis.endpoints.control.deployments import DEPLOYMENT_LOG, DeploymentService, tail
from lapis.endpoints.control.generation import Prepared, prepare
from lapis.endpoints.control.instance_process import (
    DeploymentState,
    InstanceProcess,
    end_leftover,
)
from lapis.endpoints.data.routing import DeploymentRoute, EndpointRoute, Instance, RouteTable
from lapis.logrotate import rotate_if_large
from lapis.store.sql.deployments import InstanceRow
from lapis.util import now_ms
from lapis.util.processes import backoff, stop_trees

log = logging.getLogger(__name__)
BUSY_TICK, IDLE_TICK = 0.2, 1.0
START_ATTEMPTS = 3  # exits in a row before a generation that never served is Failed
DRAIN_GRACE = 0.2  # a request picked just before draining began gets to start


class InstanceManager(threading.Thread):
    def __init__(self, service: DeploymentService, routes: RouteTable) -> None:
        super().__init__(name="lapis-instances", daemon=True)
        self.svc = service
        self.routes = routes
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._states: dict[tuple[str, str], DeploymentState] = {}
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lapis-prepare")
        service.runtime = self
        self._by_instance: dict[int, InstanceProcess] = {}  # id(Instance) -> its process
        routes.on_failure(self._on_failure)

    # --- what the service and the server call ---------------------------------------
    def notify(self, endpoint: str) -> None:
        """Something about ``endpoint`` changed: publish its route now, reconcile soon."""
        with self._lock:
            self._publish(endpoint.lower())
        self._wake.set()

    def instances(self, endpoint: str, deployment: str) -> list[dict[str, Any]] | None:
        with self._lock:
            st = self._states.get((endpoint.lower(), deployment.lower()))
            if st is None:
                return None
            return [
                p.describe(st.restarts.get(k, 0))
                for k, p in sorted(st.procs.items())
                if not p.stopping
            ]

    def _on_failure(self, _endpoint: str, instance: Instance) -> None:
        """From the data plane's thread: never block; re-probe the instance and look soon."""
        proc = self._by_instance.get(id(instance))
        if proc is not None:
            proc.poke()
        self._wake.set()

    def wait_stopped(self, endpoint: str, deployment: str, timeout: float) -> bool:
        key = (endpoint.lower(), deployment.lower())
        deadline = time.monotonic() + timeout
        while key in self._states and self.is_alive() and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.05)
        return key not in self._states

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self.is_alive():
            self.join(timeout=30)

    # --- the loop ------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._end_leftovers()
        except Exception:
            log.exception("ending leftover deployment instances failed")
        while not self._stopping.is_set():
            try:
                busy = self._tick()
            except Exception:
                log.exception("deployment instance manager tick failed")
                busy = True
            self._wake.wait(BUSY_TICK if busy else IDLE_TICK)
            self._wake.clear()
        self._shutdown()

    def _end_leftovers(self) -> None:
        for r in self.svc.store.instances():
            if r.pid and end_leftover(r.pid, r.pid_start):
                folder = self.svc.root / r.endpoint / r.deployment
                DeploymentState.log_to(
                    folder, f"ended instance {r.idx} (pid {r.pid}) left by a previous server"
                )
        self.svc.store.delete_instances()

    def _shutdown(self) -> None:
        with self._lock:
            procs = [p for st in self._states.values() for p in st.procs.values()]
            for p in procs:
                p.signal_stop()
            stop_trees([p.pid for p in procs if p.pid and p.poll() is None])
            self._states.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        try:
            self.svc.store.delete_instances()
        except Exception:
            log.exception("could not clear deployment_instances at shutdown")

    def _tick(self) -> bool:
        rows = {d.key: d for d in self.svc.store.list()}
        busy = False
        with self._lock:
            for key in [k for k in self._states if k not in rows]:
                self._forget(self._states[key])  # stopped before wait_stopped sees it go
                del self._states[key]
            for key, d in rows.items():
                st = self._states.get(key)
                if st is None:
                    st = self._states[key] = DeploymentState(d, self.svc.folder(d))
                st.row = d
                try:
                    busy = self._reconcile(st) or busy
                except Exception:  # one deployment's trouble must not stall the others
                    log.exception("reconciling deployment %s/%s failed", *key)
                    busy = True
            endpoints = {e.name.lower() for e in self.svc.endpoints.list()}
            for name in endpoints:
                self._publish(name)
            # Drain only after publishing: a generation that became ready in this tick
            # must be in the route table before the old one stops taking requests, or
            # callers would meet a route whose every instance is draining (503).
            now = time.monotonic()
            for st in self._states.values():
                count = int(st.row.spec["doc"]["instance_count"])
                self._drain(st, st.row.generation, count, now)
            for name in self.routes.names():
                if name not in endpoints:
                    self.routes.remove(name)
        return busy

    def _forget(self, st: DeploymentState) -> None:
        """A deleted deployment: stop its processes and drop its records."""
        for p in st.procs.values():
            p.stop()
            if p.instance is not None:
                self._by_instance.pop(id(p.instance), None)
        if st.preparing is not None:
            st.preparing[1].cancel()
        self.svc.store.delete_instances(*st.key)

    # --- one deployment -------------------------------------------------------------------
    def _reconcile(self, st: DeploymentState) -> bool:
        d = st.row
        gen, count = d.generation, int(d.spec["doc"]["instance_count"])
        now = time.monotonic()
        self._prepare(st, gen)
        for k, p in list(st.procs.items()):
            self._check_exit(st, k, p, gen, count, now)
        if gen in st.prepared and st.failed_gen != gen:
            for idx in range(count):
                k = (gen, idx)
                if k not in st.procs and st.pending.get(k, 0.0) <= now:
                    self._spawn(st, st.prepared[gen], k)
        if st.live_gen is not None and st.live_gen != gen and st.live_gen in st.prepared:
            for k, due in list(st.pending.items()):
                if k[0] == st.live_gen and k not in st.procs and due <= now:
                    self._spawn(st, st.prepared[st.live_gen], k)
        rotate_if_large(st.folder / DEPLOYMENT_LOG)
        for k, p in list(st.procs.items()):
            rotate_if_large(p.log_path)  # one access line per request: bounded by size
            if p.check_port() and p.instance is not None:
                self._by_instance[id(p.instance)] = p
                port = p.instance.port
                st.log(f"instance {k[1]} (generation {k[0]}) listening on port {port}")
            if p.init_failed and k[0] == gen and st.failed_gen != gen:
                self._fail(st, gen, f"init() failed in instance {k[1]}:\n{tail(p.log_path, 12)}")
            if p.state == "Ready" and p.saved_state != "Ready":
                st.log(f"instance {k[1]} (generation {k[0]}) ready")
                st.streak.pop(k, None)
            self._save(st, k, p)
        target = [st.procs.get((gen, i)) for i in range(count)]
        if st.failed_gen != gen and all(p and p.instance and p.instance.ready for p in target):
            self._succeeded(st, gen, count)
        return bool(
            st.preparing or st.pending or any(p.state != "Ready" for p in st.procs.values())
        )

    def _prepare(self, st: DeploymentState, gen: int) -> None:
        if gen in st.prepared or st.failed_gen == gen:
            return
        if st.preparing is None or st.preparing[0] != gen:
            env, model = st.row.spec["environment"]["label"], st.row.spec["doc"]["model"]
            st.log(f"preparing generation {gen}: model {model}, environment {env}")
            st.preparing = (gen, self._pool.submit(prepare, self.svc, st.row, st.log))
            return
        future = st.preparing[1]
        if not future.done():
            return
        st.preparing = None
        exc = future.exception()
        if exc is None:
            st.prepared[gen] = future.result()
        else:
            self._fail(st, gen, str(getattr(exc, "message", exc)))

    def _check_exit(
        self,
        st: DeploymentState,
        k: tuple[int, int],
        p: InstanceProcess,
        gen: int,
        count: int,
        now: float,
    ) -> None:
        code = p.poll()
        if code is None and p.unhealthy and not p.stopping:
            st.log(
                f"instance {k[1]} failed its liveness probe {p.liveness.failure_threshold} times"
            )
            p.stop()
            p.stopping = False  # treat it as an exit: restart below
            code = p.poll()
        if code is None:
            return
        del st.procs[k]
        if p.instance is not None:
            p.instance.ready = False
            self._by_instance.pop(id(p.instance), None)
        p.port_file.unlink(missing_ok=True)
        serving = k[0] == gen and k[1] < count and st.failed_gen != gen
        keep = serving or (k[0] == st.live_gen and st.live_gen != gen)
        if p.stopping or not keep:
            self.svc.store.delete_instance(st.key[0], st.key[1], k[1], k[0])
            return
        streak = st.streak[k] = st.streak.get(k, 0) + 1
        if k[0] != st.live_gen and streak >= START_ATTEMPTS:  # never served: a crash loop
            why = f"instance {k[1]} exited {streak} times while starting (last code {code})"
            self._fail(st, k[0], f"{why}:\n{tail(p.log_path, 12)}")
            return
        restarts = st.restarts[k] = st.restarts.get(k, 0) + 1
        st.log(f"instance {k[1]} exited (code {code}); restarting, restart #{restarts}")
        st.pending[k] = now + backoff(streak)

    def _spawn(self, st: DeploymentState, prepared: Prepared, k: tuple[int, int]) -> None:
        st.pending.pop(k, None)
        readiness, liveness = st.probes()
        p = InstanceProcess(
            st.row.name, k[1], prepared, st.folder, readiness, liveness, self._wake.set
        )
        try:
            p.start()
        except OSError as exc:
            self._fail(st, k[0], f"cannot start instance {k[1]}: {exc}")
            return
        st.procs[k] = p
        st.log(f"instance {k[1]} (generation {k[0]}) started: pid {p.pid}")
        self._save(st, k, p)

    def _save(self, st: DeploymentState, k: tuple[int, int], p: InstanceProcess) -> None:
        state = p.state
        if state == p.saved_state:
            return
        p.saved_state = state
        row = InstanceRow(
            endpoint=st.key[0],
            deployment=st.key[1],
            idx=k[1],
            generation=k[0],
            state=state,
            pid=p.pid,
            pid_start=p.pid_start,
            port=p.instance.port if p.instance else None,
            restarts=st.restarts.get(k, 0),
            started_at=p.started_at,
        )
        self.svc.store.save_instance(row)

    def _fail(self, st: DeploymentState, gen: int, reason: str) -> None:
        st.failed_gen = gen
        st.log(f"generation {gen} failed: {reason}")
        for k, p in st.procs.items():
            if k[0] == gen:
                p.stop()
        if st.live_gen is not None and st.live_gen != gen:
            reason += f" (generation {st.live_gen} keeps serving)"
        self.svc.store.set_state(st.key[0], st.row.name, gen, "Failed", reason.strip(), now_ms())

    def _succeeded(self, st: DeploymentState, gen: int, count: int) -> None:
        if st.row.provisioning_state != "Succeeded":
            st.log(f"generation {gen} ready: {count} instance(s); provisioning Succeeded")
            self.svc.store.set_state(st.key[0], st.row.name, gen, "Succeeded", None, now_ms())
            st.row.provisioning_state = "Succeeded"
        if st.live_gen != gen:
            st.live_gen = gen
            for old in [g for g in st.prepared if g != gen]:
                st.prepared.pop(old)

    def _drain(self, st: DeploymentState, gen: int, count: int, now: float) -> None:
        """Instances of older generations once the new one serves (and of any generation
        overtaken by a newer update), and those past ``instance_count``: no new requests;
        each is stopped when idle, or after the request timeout."""
        timeout = st.row.spec["doc"]["request_settings"]["request_timeout_ms"] / 1000
        for k, p in list(st.procs.items()):
            # any generation but the target and the one still serving until it is ready
            retiring = k[1] >= count if k[0] == gen else k[0] != st.live_gen
            if not retiring or p.stopping:
                continue
            inst = p.instance
            if p.draining_since is None:
                p.draining_since = now
                if inst is not None:
                    inst.draining = True
                st.log(f"instance {k[1]} (generation {k[0]}) draining")
                continue
            idle = inst is None or inst.in_flight <= 0
            waited = now - p.draining_since
            if (idle and waited >= DRAIN_GRACE) or waited > timeout:
                st.log(f"instance {k[1]} (generation {k[0]}) stopped after draining")
                p.stop()
        gens = {k[0] for k in st.procs}
        for folder in st.folder.glob("g*"):
            number = folder.name[1:]
            if number.isdigit() and int(number) < gen and int(number) not in gens:
                shutil.rmtree(folder, ignore_errors=True)

    # --- routes ---------------------------------------------------------------------------
    def _publish(self, endpoint: str) -> None:
        e = self.svc.endpoints.store.get(endpoint)
        if e is None:
            self.routes.remove(endpoint)
            return
        deployments: dict[str, DeploymentRoute] = {}
        for (ep, name), st in sorted(self._states.items()):
            if ep != endpoint:
                continue
            settings = st.row.spec["doc"]["request_settings"]
            live: list[Instance] = [
                p.instance
                for _, p in sorted(st.procs.items())
                if p.instance is not None and not p.stopping
            ]
            deployments[name] = DeploymentRoute(
                st.row.name,
                live,
                settings["max_concurrent_requests_per_instance"],
                settings["request_timeout_ms"],
            )
        self.routes.publish(
            EndpointRoute(
                e.name,
                (e.primary_key, e.secondary_key),
                dict(e.traffic),
                dict(e.mirror_traffic),
                deployments,
                e.auth_mode,
            )
        )
