"""One instance process (start it, learn its port, probe it, stop it) and one deployment's
bookkeeping (:class:`DeploymentState`) for the instance manager.

The process is the scoring server (``lapis_scoring.py``, a copy of
``lapis.endpoints.runtime.scoring``) started with ``--port 0 --port-file F`` in a
session of its own (so stopping it ends whatever it started too), its stdout
and stderr appended to ``instance-<i>.log``. The process mechanics — the
launcher that ties its life to the instance manager's thread, the port file,
the probe, the restart back-off, ending a recorded leftover — are the shared
ones in ``lapis.util.processes``.

Probes run on a thread per instance, with the deployment's settings:
readiness (``GET /ready``) sets :attr:`Instance.ready` — the only thing the
data plane routes on — and never restarts anything; it looks every quarter
second until the instance is ready (and again at once when the data plane
reports a failed connection), then every ``period`` seconds; liveness (``GET
/health``) marks the instance unhealthy after ``failure_threshold`` misses in
a row, and the manager restarts it.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from lapis.endpoints.control.deployments import DEPLOYMENT_LOG
from lapis.endpoints.control.generation import Prepared
from lapis.endpoints.data.routing import Instance
from lapis.specs.deployment import Probe
from lapis.store.sql.deployments import OnlineDeployment
from lapis.util import now_ms, processes
from lapis.util.processes import (
    http_probe,
    read_port_file,
    start_time_ms,
    stop_trees,
    tied_to_this_process,
)

PORT_FLAG = "--port-file"
probe = http_probe  # the probe loop's name for it


def end_leftover(pid: int, pid_start: int | None) -> bool:
    """End a recorded instance process if it still runs — the same process, not a reused pid."""
    return processes.end_leftover(pid, pid_start, PORT_FLAG)


class InstanceProcess:
    """A running (or exited) instance; the manager thread owns it, probes only set flags."""

    def __init__(
        self,
        deployment: str,
        index: int,
        prepared: Prepared,
        folder: Path,
        readiness: Probe,
        liveness: Probe,
        wake: Callable[[], None],
    ) -> None:
        self.deployment = deployment
        self.index = index
        self.generation = prepared.generation
        self.prepared = prepared
        self.log_path = folder / f"instance-{index}.log"
        self.port_file = folder / "run" / f"instance-{index}-g{self.generation}.port"
        self.readiness = readiness
        self.liveness = liveness
        self.wake = wake
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid_start: int | None = None
        self.started_at: int | None = None
        self.instance: Instance | None = None
        self.init_failed = False
        self.unhealthy = False
        self.was_ready = False
        self.stopping = False
        self.draining_since: float | None = None
        self.saved_state: str | None = None
        self._stop = threading.Event()
        self._poke = threading.Event()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def state(self) -> str:
        inst = self.instance
        if self.stopping:
            return "Stopping"
        if inst is not None and inst.draining:
            return "Draining"
        if self.init_failed:
            return "Failed"
        if inst is not None and inst.ready:
            return "Ready"
        return "NotReady" if self.was_ready else "Starting"

    def start(self) -> None:
        self.port_file.parent.mkdir(parents=True, exist_ok=True)
        self.port_file.unlink(missing_ok=True)
        argv = tied_to_this_process(
            [*self.prepared.argv, "--port", "0", PORT_FLAG, str(self.port_file)]
        )
        self.started_at = now_ms()
        from lapis.compute import sandbox

        # scoring code keeps out of the workspace (lapis/compute/sandbox.py)
        box = sandbox.prepare(*self.prepared.sandbox) if self.prepared.sandbox else None
        with open(self.log_path, "ab", buffering=0) as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"--- {stamp} generation {self.generation}: starting ---\n".encode())
            self.proc = sandbox.spawn(
                box,
                argv,
                cwd=self.prepared.cwd,
                env=self.prepared.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_start = start_time_ms(self.proc.pid)

    def poll(self) -> int | None:
        return self.proc.poll() if self.proc else 0

    def check_port(self) -> bool:
        """Once the server wrote its port: make the routable :class:`Instance`, start probing."""
        if self.instance is not None:
            return False
        port = read_port_file(self.port_file)
        if port is None:
            return False
        self.instance = Instance(self.deployment, self.index, self.generation, "127.0.0.1", port)
        threading.Thread(
            target=self._probe_loop, name=f"lapis-probe-{self.deployment}-{self.index}", daemon=True
        ).start()
        return True

    def poke(self) -> None:
        """Probe readiness now (the data plane just failed to reach this instance)."""
        self._poke.set()

    def stop(self) -> None:
        """Stop probing and end the process group (idempotent)."""
        self.stopping = True
        self._stop.set()
        self._poke.set()
        if self.instance is not None:
            self.instance.ready = False
        if self.proc is not None and self.proc.poll() is None:
            stop_trees([self.proc.pid])
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)

    def signal_stop(self) -> None:
        """First half of a fast shutdown of many instances: mark and stop probing."""
        self.stopping = True
        self._stop.set()
        self._poke.set()
        if self.instance is not None:
            self.instance.ready = False

    def describe(self, restarts: int) -> dict[str, Any]:
        inst = self.instance
        return {
            "index": self.index,
            "generation": self.generation,
            "state": self.state,
            "ready": bool(inst and inst.ready and not inst.draining),
            "restarts": restarts,
            "pid": self.pid,
            "port": inst.port if inst else None,
            "in_flight": inst.in_flight if inst else 0,
            "started_at": self.started_at,
        }

    def _probe_loop(self) -> None:
        inst = self.instance
        assert inst is not None
        ready_p, live_p = self.readiness, self.liveness
        start = time.monotonic()
        next_ready = start + ready_p.initial_delay
        next_live = start + live_p.initial_delay
        ok = misses = live_misses = 0
        while not self._stop.is_set():
            if self._poke.wait(max(0.0, min(next_ready, next_live) - time.monotonic())):
                self._poke.clear()
                next_ready = time.monotonic()
            if self._stop.is_set():
                return
            now = time.monotonic()
            if now >= next_ready:
                status, body = probe(inst.port, "/ready", ready_p.timeout)
                if status == 200:
                    ok, misses = ok + 1, 0
                    if ok >= ready_p.success_threshold and not inst.ready and not self.stopping:
                        inst.ready = self.was_ready = True
                        self.wake()
                else:
                    ok, misses = 0, misses + 1
                    if body.get("status") == "failed" and not self.init_failed:
                        self.init_failed = True
                        self.wake()
                    if inst.ready and misses >= ready_p.failure_threshold:
                        inst.ready = False
                        self.wake()
                # until ready (at start, or after a miss) look often; then every period
                next_ready = now + (ready_p.period if inst.ready else min(ready_p.period, 0.25))
            if now >= next_live:
                status, _ = probe(inst.port, "/health", live_p.timeout)
                live_misses = 0 if status == 200 else live_misses + 1
                if live_misses >= live_p.failure_threshold and not self.unhealthy:
                    self.unhealthy = True
                    self.wake()
                next_live = now + live_p.period


class DeploymentState:
    """What the manager knows of one deployment beyond its row."""

    def __init__(self, d: OnlineDeployment, folder: Path) -> None:
        self.row = d
        self.folder = folder
        self.procs: dict[tuple[int, int], InstanceProcess] = {}  # (generation, index)
        self.prepared: dict[int, Prepared] = {}
        self.preparing: tuple[int, Future[Prepared]] | None = None
        self.failed_gen: int | None = None
        self.live_gen: int | None = None
        self.restarts: dict[tuple[int, int], int] = {}
        self.streak: dict[tuple[int, int], int] = {}
        self.pending: dict[tuple[int, int], float] = {}  # restart due at (monotonic)

    @property
    def key(self) -> tuple[str, str]:
        return self.row.key

    def log(self, message: str) -> None:
        self.log_to(self.folder, message)

    @staticmethod
    def log_to(folder: Path, message: str) -> None:
        """Append a time-stamped line to the deployment log (the control plane's story)."""
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(folder / DEPLOYMENT_LOG, "a") as fh:
            fh.write(f"{stamp} {message}\n")

    def probes(self) -> tuple[Probe, Probe]:
        doc = self.row.spec["doc"]
        return Probe(**doc["readiness_probe"]), Probe(**doc["liveness_probe"])
