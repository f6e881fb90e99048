"""Child processes Lapis starts and must be able to end: one set of helpers for all of them.

Job supervisors, deployment instances and (next) notebook servers are process
trees in their own process groups. Here: ending a tree, recognising a process
after a restart, a launcher that ties a child's life to the server's
(parent-death signal), the port file a child reports its port in, an HTTP
probe, the restart back-off, and ending a recorded leftover.

Ending one means SIGTERM to the group and to every descendant (some leave the
group), a grace period, then SIGKILL to whatever is left. Recognising one after
a restart means its pid *and* its start time: a pid alone may have been reused
by an unrelated process.

psutil is imported inside the functions: the job supervisor imports this module
and must start in tens of milliseconds.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

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


# --- managed children: their life tied to the server's ----------------------------------
PR_SET_PDEATHSIG = 1
_LAUNCHER = f"""\
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl({PR_SET_PDEATHSIG}, signal.SIGKILL)
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    os._exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""


def tied_to_this_process(argv: list[str]) -> list[str]:
    """``argv`` behind a tiny launcher that asks Linux to SIGKILL the child when the thread
    that started it goes away (a server killed with SIGKILL leaves nothing running); where
    the call is missing the child simply outlives us and the next server ends it as a
    recorded leftover (:func:`end_leftover`)."""
    return [sys.executable, "-S", "-c", _LAUNCHER, str(os.getpid()), *argv]


def read_port_file(path: Path) -> int | None:
    """The port a child wrote once it listened (``--port 0 --port-file F``), or None yet."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def http_probe(port: int, path: str, timeout: float) -> tuple[int, dict[str, Any]]:
    """``(status, JSON body)`` of ``GET path`` on loopback; status 0 when nothing answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            data = {}
        return resp.status, data if isinstance(data, dict) else {}
    except (OSError, http.client.HTTPException):
        return 0, {}
    finally:
        conn.close()


def backoff(streak: int) -> float:
    """Seconds before restart #``streak`` in a row: 0, 1, 3, 7, … up to 30."""
    return float(min(30, 2 ** (streak - 1) - 1))


def end_leftover(pid: int, started_ms: int | None, marker: str) -> bool:
    """End a recorded child if it still runs: the same process (pid and start time) and
    ``marker`` in its command line — never an unrelated process that reused the pid."""
    import psutil

    if started_ms is None or not same_process(pid, started_ms):
        return False
    try:
        if marker not in psutil.Process(pid).cmdline():
            return False
    except psutil.Error:
        return False
    stop_trees([pid])
    return True
