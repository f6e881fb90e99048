"""What ``lapis compute show`` and the studio say about a cluster's nodes.

Each node with its state and what it is doing: the head; each worker ``Starting``
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


def busy_nodes(jobs_root: Path, cluster: str) -> dict[int, str]:
    """Worker index → the job running on it: a supervisor's node file, or a gang's list
    of nodes, in the folders of jobs that have not ended."""
    busy: dict[int, str] = {}
    for folder in jobs_root.iterdir() if jobs_root.is_dir() else []:
        node, gang = folder / NODE_FILE, folder / GANG_NODES
        if not (node.exists() or gang.exists()):
            continue
        try:
            if '"Exited"' in (folder / "events.jsonl").read_text():
                continue
            job = json.loads((folder / "job.json").read_text())
            if job.get("env", {}).get("LAPIS_COMPUTE") != cluster:
                continue
            indexes = json.loads(gang.read_text()) if gang.exists() else [int(node.read_text())]
        except (OSError, ValueError):
            continue
        for index in indexes:
            if str(index).isdigit():
                busy[int(index)] = folder.name
    return busy


def observe(
    name: str, state: dict[str, Any], folder: Path, jobs_root: Path, limits: dict[str, int]
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
    busy = busy_nodes(jobs_root, name)
    workers = [w for w in state.get("workers", []) if ray_nodes.alive(w)]
    idle_for = time.time() - float(state.get("last_active", time.time()))
    above_min = len(workers) > limits["min"]
    for w in sorted(workers, key=lambda w: int(w["index"])):
        index = int(w["index"])
        if seen is not None and index not in seen:
            nodes.append(NodeState(f"{name}-{index}", "Starting", "joining the cluster"))
        elif index in busy:
            nodes.append(NodeState(f"{name}-{index}", "Running", f"busy: job {busy[index]}"))
        elif above_min and not busy:
            left = max(0, int(limits["idle"] - idle_for))
            nodes.append(NodeState(f"{name}-{index}", "Running", f"idle; released in {left} s"))
        else:
            nodes.append(NodeState(f"{name}-{index}", "Running", "idle"))
    now = time.time()
    for w in state.get("lost", []):
        when = float(w.get("lost_at") or w.get("started_at") or 0)
        if now - when > RECENT_LOSS_SECONDS:
            continue
        what = "Preempted" if w.get("preempted") else "Lost"
        at = time.strftime("%H:%M:%S", time.localtime(when))
        nodes.append(NodeState(f"{name}-{w['index']}", what, f"{what.lower()} at {at}"))
    return nodes
