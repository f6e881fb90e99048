"""The process backends: ``local`` and ``computeinstance`` both run on this host.

They differ only in the limits the scheduler passes (an instance's cores and
memory, versus the whole host), which the supervisor enforces. The handle is
the supervisor's pid plus its start time, so a pid reused after a reboot is
never mistaken for our supervisor.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from lapis.compute.base import ComputeBackend, LaunchContext, register
from lapis.entities.compute import ComputeType
from lapis.util.processes import kill_tree, same_process, start_time_ms


class ProcessBackend(ComputeBackend):
    def __init__(self, type_name: str) -> None:
        self.type_name = type_name
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def launch(self, ctx: LaunchContext) -> dict[str, Any]:
        log = open(ctx.job_dir / "supervisor.log", "ab")  # noqa: SIM115  (handed to the child)
        try:
            proc = subprocess.Popen(
                [ctx.python, "-m", "lapis.jobs.supervisor", str(ctx.job_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # a signal to the server's group must not reach it
                close_fds=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        finally:
            log.close()
        self._children[proc.pid] = proc
        return {"pid": proc.pid, "start": start_time_ms(proc.pid)}

    def reap(self) -> None:
        """Collect supervisors that ended (they are our children until the server restarts)."""
        for pid, proc in list(self._children.items()):
            if proc.poll() is not None:
                del self._children[pid]

    def alive(self, handle: dict[str, Any]) -> bool:
        self.reap()
        pid = handle.get("pid")
        if not pid:
            return False
        return same_process(int(pid), handle.get("start"))

    def terminate(self, handle: dict[str, Any], child_pid: int | None) -> None:
        if child_pid:
            kill_tree(child_pid, grace=1.0)
        if self.alive(handle):
            kill_tree(int(handle["pid"]), grace=1.0)
        self.reap()


register(ProcessBackend(ComputeType.LOCAL.value))
register(ProcessBackend(ComputeType.INSTANCE.value))
