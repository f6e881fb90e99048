"""What ``lapis compute show`` and the studio say about a cluster's nodes.

Each node with its state, what it is doing and its CPU use: the head; each worker ``Starting``
(its process is up, Ray does not count it yet), ``Running`` and either busy (the
job on it) or idle (and, above ``min_instances``, when it will be released);
and the nodes lost in the last ten minutes, ``Lost`` or ``Preempted``, so a
failure stays visible after the cluster has replaced the node.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from lapis.compute.base import NodeState
from lapis.compute.ray import nodes as ray_nodes
from lapis.compute.supervisor import NODE_FILE

RECENT_LOSS_SECONDS = 600
GANG_NODES = "system_logs/gang_nodes.json"  # written by lapis/compute/ray/gang.py


def busy_nodes(state: dict[str, Any]) -> dict[int, str]:
    """Worker index → the job running on it: a supervisor's node file, or a gang's list
    of nodes, in the folders of the cluster's jobs that have not ended (``state["jobs"]``,
    kept by the backend: never a scan of every job folder in the workspace)."""
    busy: dict[int, str] = {}
    for where in state.get("jobs", []):
        folder = Path(where)
        node, gang = folder / NODE_FILE, folder / GANG_NODES
        try:
            if ended(folder):
                continue
            indexes = json.loads(gang.read_text()) if gang.exists() else [node.read_text()]
        except (OSError, ValueError):
            continue
        for index in indexes:
            if str(index).strip().isdigit():
                busy[int(index)] = folder.name
    return busy


def ended(folder: Path) -> bool:
    """Whether the job's supervisor has written its last event (or its folder is gone)."""
    try:
        return '"Exited"' in (folder / "events.jsonl").read_text()
    except FileNotFoundError:
        return not folder.exists()


_SAMPLES: dict[int, tuple[float, float]] = {}  # node pid -> (when, CPU seconds of its tree)
FRESH_SAMPLE = 60.0


def _tree_seconds(pid: int) -> float | None:
    """CPU seconds used so far by a node's process tree: its raylet, Ray's workers and the
    job's processes under them."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue  # ended meanwhile
        total += times.user + times.system
    return total


def cpu_use(nodes: list[dict[str, Any]], cores: int) -> dict[int, float]:
    """Each local node's CPU use over the time since it was last looked at, in percent of
    the cores it offers (its process tree, since local nodes share one host and the host's
    figure would be the same for all). With no recent sample, two are taken 0.3 s apart."""
    now = time.monotonic()
    pids = [int(n["pid"]) for n in nodes]
    if any(now - _SAMPLES.get(pid, (0.0, 0.0))[0] > FRESH_SAMPLE for pid in pids):
        for pid in pids:
            seconds = _tree_seconds(pid)
            if seconds is not None:
                _SAMPLES[pid] = (time.monotonic(), seconds)
        time.sleep(0.3)
    out: dict[int, float] = {}
    for pid in pids:
        seconds, before = _tree_seconds(pid), _SAMPLES.get(pid)
        if seconds is None or before is None:
            continue
        elapsed = time.monotonic() - before[0]
        if elapsed > 0:
            used = max(0.0, seconds - before[1]) / elapsed / max(cores, 1)
            out[pid] = round(min(100.0, used * 100), 1)
        _SAMPLES[pid] = (time.monotonic(), seconds)
    for gone in set(_SAMPLES) - set(pids):
        if time.monotonic() - _SAMPLES[gone][0] > FRESH_SAMPLE:
            del _SAMPLES[gone]
    return out


def host_cpu(state: dict[str, Any]) -> dict[str, float]:
    """Host address → its CPU use in percent, as Ray's agents report it (nodes on other
    hosts, where this host cannot see the processes)."""
    try:
        listed = ray_nodes.job_api(state, "/nodes?view=summary")["data"]["summary"]
    except (OSError, ValueError, KeyError, TypeError, LookupError):
        return {}
    return {str(n.get("ip")): float(n.get("cpu", 0.0)) for n in listed if n.get("ip")}


def observe(
    name: str,
    state: dict[str, Any],
    folder: Path,
    limits: dict[str, int],
    cores: int = 1,
) -> list[NodeState]:
    head_up = ray_nodes.alive(state["head"]) and ray_nodes.dashboard_up(state, folder)
    restarts = int(state.get("head_restarts", 0))
    nodes = [
        NodeState(
            f"{name}-head",
            "Running" if head_up else "Starting",
            "head" + (f" (restarted {restarts}x)" if restarts else ""),
        )
    ]
    seen = ray_nodes.ray_alive(state, folder) if head_up else None
    busy = busy_nodes(state)
    workers = [w for w in state.get("workers", []) if ray_nodes.alive(w)]
    local = [w for w in workers if not w.get("host")]
    use = cpu_use([state["head"], *local] if head_up else local, cores)
    remote = host_cpu(state) if head_up and len(local) < len(workers) else {}
    nodes[0] = NodeState(nodes[0].name, nodes[0].state, nodes[0].detail,
                         use.get(int(state["head"]["pid"])))  # fmt: skip
    idle_for = time.time() - float(state.get("last_active", time.time()))
    above_min = len(workers) > limits["min"]
    for w in sorted(workers, key=lambda w: int(w["index"])):
        index, label = int(w["index"]), f"{name}-{w['index']}"
        cpu = remote.get(str(w["host"])) if w.get("host") else use.get(int(w["pid"]))
        if seen is not None and index not in seen:
            nodes.append(NodeState(label, "Starting", "joining the cluster"))
        elif index in busy:
            nodes.append(NodeState(label, "Running", f"busy: job {busy[index]}", cpu))
        elif above_min and not busy:
            left = max(0, int(limits["idle"] - idle_for))
            nodes.append(NodeState(label, "Running", f"idle; released in {left} s", cpu))
        else:
            nodes.append(NodeState(label, "Running", "idle", cpu))
    now = time.time()
    for w in state.get("lost", []):
        when = float(w.get("lost_at") or w.get("started_at") or 0)
        if now - when > RECENT_LOSS_SECONDS:
            continue
        what = "Preempted" if w.get("preempted") else "Lost"
        at = time.strftime("%H:%M:%S", time.localtime(when))
        nodes.append(NodeState(f"{name}-{w['index']}", what, f"{what.lower()} at {at}"))
    return nodes
