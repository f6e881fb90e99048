"""Child processes Lapis starts and must be able to end: one set of helpers for all of them.

Job supervisors, deployment instances and (next) notebook servers are process
trees in their own process groups. Ending one means SIGTERM to the group and to
every descendant (some leave the group), a grace period, then SIGKILL to
whatever is left. Recognising one after a restart means its pid *and* its start
time: a pid alone may have been reused by an unrelated process.

psutil is imported inside the functions: the job supervisor imports this module
and must start in tens of milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import signal

# Start times are compared with this slack: psutil derives them from the boot time,
# which moves when the wall clock is stepped (NTP) over a long-running job; a pid
# reused by another process within two seconds of the original's start is not a case.
SAME_START_MS = 2000


def start_time_ms(pid: int) -> int | None:
    """A process' start time in epoch ms, or None when it does not exist (or is not ours)."""
    import psutil

    try:
        return round(psutil.Process(pid).create_time() * 1000)
    except psutil.Error:
        return None


def same_process(pid: int, started_ms: int | None) -> bool:
    """Whether ``pid`` is still the process that started at ``started_ms``."""
    now = start_time_ms(pid)
    if now is None:
        return False
    return started_ms is None or abs(now - int(started_ms)) <= SAME_START_MS


def stop_trees(pids: list[int], grace: float = 3.0) -> None:
    """SIGTERM each process group and tree, wait up to ``grace`` s together, then SIGKILL."""
    import psutil

    procs: list[psutil.Process] = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            procs += [root, *root.children(recursive=True)]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=grace)


def kill_tree(pid: int, grace: float = 3.0) -> None:
    """End one process, its group and every descendant (even ones that left the group)."""
    stop_trees([pid], grace)
