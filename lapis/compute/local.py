"""Backends that run jobs as processes on this host: ``local`` and (in instance.py) instances.

A job is a supervisor process (``python -m lapis.compute.supervisor JOB_DIR``)
in its own session, talking through files in the job folder (the protocol is
in supervisor.py): ``job.json`` in, ``events.jsonl``/``heartbeat``/logs out,
``cancel`` in. Staging copies the code snapshot and the inputs into that folder
(workdir.py) on the launching worker thread.

The handle is the supervisor's pid, its start time (a pid reused after a
reboot is never mistaken for ours) and the job folder.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from lapis.compute import logs as job_logs
from lapis.compute import workdir
from lapis.compute.base import ComputeBackend, Handle, LaunchContext, NodeState, Progress
from lapis.compute.supervisor import CANCEL, HEARTBEAT, read_events
from lapis.compute.workdir import SPOOL
from lapis.entities.compute import Compute, ComputeType
from lapis.util.processes import kill_tree, same_process, start_time_ms


class ProcessBackend(ComputeBackend):
    """Jobs as supervised process trees on this host; subclasses decide the lifecycle."""

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    # --- lifecycle: this host is already up; nothing to provision, start or stop -------
    def _provision(self, compute: Compute) -> None:
        pass

    def _start(self, compute: Compute) -> None:
        pass

    def _stop(self, compute: Compute) -> None:
        pass

    def _delete(self, compute: Compute) -> None:
        pass

    # --- jobs ----------------------------------------------------------------------------
    def _launch(self, ctx: LaunchContext) -> Handle:
        folder = self.stage(ctx)
        return self._spawn(ctx, folder)

    def stage(self, ctx: LaunchContext) -> Path:
        """The job folder with its code, inputs and ``job.json`` (the supervisor's orders)."""
        folder = ctx.job_dir
        prepared = workdir.prepare(ctx.job, folder, ctx.snapshots, ctx.data)
        env = dict(ctx.env)
        env.update(prepared.direct_env)  # direct inputs: the storage credential, by design
        env["LAPIS_SPOOL_DIR"] = str(folder / SPOOL)
        for name, path in prepared.inputs.items():
            env[f"AZURE_ML_INPUT_{name}"] = path
        for name, path in prepared.outputs.items():
            env[f"AZURE_ML_OUTPUT_{name}"] = path
        env.update(ctx.job.spec.get("environment_variables") or {})
        sandbox = ctx.sandbox
        if sandbox is not None and prepared.read_only:  # readable, never writable
            sandbox = {
                **sandbox,
                "deny": [*sandbox.get("deny", []), *prepared.read_only],
                "read_only": [*sandbox.get("read_only", []), *prepared.read_only],
            }
        if prepared.data_inputs:
            workdir.write_sources_file(folder, {n: ctx.data[n] for n in prepared.data_inputs})
        workdir.write_job_file(
            folder,
            {
                "name": ctx.job.name,
                "command": prepared.command,
                "environment": ctx.environment,
                "env": env,
                "cpu_set": list(ctx.compute.cpu_set),
                "memory_limit_bytes": (
                    ctx.compute.memory_limit_bytes if self.limits_memory else None
                ),
                "timeout_seconds": ctx.job.spec.get("timeout_seconds"),
                "services": ctx.job.spec.get("services") or {},  # compute/job_services.py
                "user": ctx.job.created_by,
                "sandbox": sandbox,
                "downloads": prepared.downloads,
                "data_inputs": prepared.data_inputs,
                "data_cache": str(Path(ctx.environment["root"]).parent / "cache" / "data"),
                "url_cache": str(Path(ctx.environment["root"]).parent / "cache" / "urls"),
                **self.job_extras(ctx),
            },
        )
        return folder

    def job_extras(self, ctx: LaunchContext) -> dict[str, Any]:
        """More orders for the supervisor from a backend that needs them (a cluster's gang)."""
        return {}

    def _spawn(self, ctx: LaunchContext, folder: Path) -> Handle:
        log = open(folder / "supervisor.log", "ab")  # noqa: SIM115  (handed to the child)
        try:
            proc = subprocess.Popen(
                [ctx.python, "-m", "lapis.compute.supervisor", str(folder)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # a signal to the server's group must not reach it
                close_fds=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        finally:
            log.close()
        with self._lock:
            self._children[proc.pid] = proc
        return {"pid": proc.pid, "start": start_time_ms(proc.pid), "dir": str(folder)}

    def poll(self, handle: Handle, cursor: int) -> Progress:
        folder = _folder(handle)
        events, after = read_events(folder, cursor)
        try:
            beat: float | None = (folder / HEARTBEAT).stat().st_mtime
        except FileNotFoundError:
            beat = None
        return Progress(events, after, beat)

    def alive(self, handle: Handle) -> bool:
        self._reap()
        pid = handle.get("pid")
        return pid is not None and same_process(int(pid), handle.get("start"))

    def logs(self, handle: Handle, cursor: str | None) -> tuple[str, str]:
        return job_logs.read(_folder(handle), cursor)

    def cancel(self, handle: Handle, force: bool = False) -> None:
        folder = _folder(handle)
        if not force:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / CANCEL).write_text(str(int(time.time() * 1000)))
            return
        child = _running_pid(folder)
        if child:
            kill_tree(child, grace=1.0)
        if self.alive(handle):
            kill_tree(int(handle["pid"]), grace=1.0)
        self._reap()

    def collect(self, handle: Handle) -> Path:
        return _folder(handle)  # already here

    def _reap(self) -> None:
        """Collect supervisors that ended (our children until the server restarts)."""
        with self._lock:
            for pid, proc in list(self._children.items()):
                if proc.poll() is not None:
                    del self._children[pid]


class LocalBackend(ProcessBackend):
    """This host as a whole: always running, nothing to provision, no memory cap."""

    type_name: ClassVar[str] = ComputeType.LOCAL.value
    description: ClassVar[str] = "this host: each job is a supervised process, no resource slice"

    def _observe(self, compute: Compute) -> list[NodeState]:
        return [NodeState(os.uname().nodename, "Running", "this host")]


def _folder(handle: Handle) -> Path:
    return Path(str(handle["dir"]))


def _running_pid(folder: Path) -> int | None:
    """The job's own process, from the supervisor's Running event (None before it ran)."""
    pid = None
    for event in read_events(folder, 0)[0]:
        if event.get("status") == "Running" and event.get("pid"):
            pid = int(event["pid"])
    return pid
