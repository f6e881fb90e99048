"""Compute clusters (``type: amlcompute``) on Ray.

A cluster is a Ray cluster that Lapis starts and supervises: a head node with no
CPUs for work (``ray start --head --num-cpus=0``) and 0..``max_instances`` worker
nodes of the cluster's size, from its node provider: ``local`` processes or
``ssh`` hosts (lapis/compute/ray/nodes.py). A cluster someone else runs can be
attached instead (lapis/compute/ray/attached.py): then Lapis only submits jobs.

Jobs are Ray jobs: the entrypoint is Lapis' own supervisor (the same file
protocol as on ``local``: ``job.json`` in, events and logs out), scheduled on a
worker by asking for that node's ``lapis_node`` resource — one job per node,
as on Azure's clusters. Staging happens on this host; nodes share the workspace
home, so the job folder is where the supervisor runs.

Scaling is done here: a job submitted while fewer nodes are up than jobs need starts
them (up to ``max_instances``; local ones a few at a time); nodes above ``min_instances``
stop once no job has run for ``idle_time_before_scale_down`` seconds. The state (pids,
ports) is a JSON file per cluster, so a restarted server finds its nodes again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from lapis.compute.base import ComputeError, Handle, LaunchContext, NodeState
from lapis.compute.local import ProcessBackend
from lapis.compute.ray import attached as ray_attached
from lapis.compute.ray import gang
from lapis.compute.ray import nodes as ray_nodes
from lapis.compute.ray import submit as ray_submit
from lapis.compute.ray import view as ray_view
from lapis.compute.ray.nodes import ACTIVE, NODE_RESOURCE
from lapis.compute.supervisor import NODE_FILE, emit
from lapis.entities.compute import Compute, ComputeType
from lapis.errors import InvalidParameterValue

log = logging.getLogger("lapis.compute.ray")
_ROOT: list[Path] = [Path.home() / ".lapis" / "clusters"]
HEAD_TRIES = 3
MAINTAIN_SECONDS = 1.0  # scale checks ask Ray over HTTP: not on every 0.1 s tick


def configure(root: Path) -> None:
    """Where clusters keep their state (the workspace home's ``clusters/``)."""
    _ROOT[0] = root


def folder_of(name: str) -> Path:
    """A cluster's folder: its state, node logs and Ray token."""
    return _ROOT[0] / name.lower()


def ray_missing() -> str | None:
    try:
        import ray  # noqa: F401
    except ImportError:
        return "compute clusters need Ray: pip install 'lapis[ray]'"
    return None


class RayClusterBackend(ProcessBackend):
    type_name: ClassVar[str] = ComputeType.CLUSTER.value
    description: ClassVar[str] = "a Ray cluster of min..max nodes of one size (local processes)"

    def __init__(self) -> None:
        super().__init__()
        self._nodes_lock = threading.Lock()
        self._maintained: dict[str, float] = {}  # cluster -> monotonic time of the last pass

    # --- state -------------------------------------------------------------------------
    def _dir(self, compute: Compute) -> Path:
        return folder_of(compute.name)

    def _state(self, compute: Compute) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self._dir(compute) / "state.json").read_text())
        except (OSError, ValueError):
            return {}
        data["folder"] = str(self._dir(compute))
        return data

    def _save(self, compute: Compute, state: dict[str, Any]) -> None:
        folder = self._dir(compute)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "state.json.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(folder / "state.json")

    def _temp_dir(self, compute: Compute) -> str:
        # Ray's socket paths must stay under 107 bytes: a short folder per cluster
        key = hashlib.sha256(str(self._dir(compute)).encode()).hexdigest()[:12]
        return f"/tmp/lapis-ray-{key}"

    @staticmethod
    def settings(compute: Compute) -> dict[str, Any]:
        p = compute.properties
        return {
            "min": int(p.get("min_instances", 0)),
            "max": int(p.get("max_instances", 1)),
            "idle": int(p.get("idle_time_before_scale_down", 120)),
        }

    # --- processes (lapis/compute/ray/nodes.py) ------------------------------------------
    def _start_worker(self, compute: Compute, state: dict[str, Any]) -> bool:
        """One more node; False when the provider has no host left for it, or while nodes
        of this host are starting (the next one starts on a later ``_maintain``)."""
        folder, provider = self._dir(compute), ray_nodes.provider_of(compute)
        if not provider and not ray_nodes.may_start(state, folder):
            return False
        node = ray_nodes.start_worker(
            folder, self._temp_dir(compute), state, compute.cores, compute.memory_gib, provider
        )
        if node is None:
            log.warning("cluster %s: every host of the ssh provider has a node", compute.name)
            return False
        log.info("cluster %s: started worker node %d", compute.name, node["index"])
        return True

    def _head(self, compute: Compute) -> dict[str, Any]:
        address = (ray_nodes.provider_of(compute) or {}).get("head_address", "127.0.0.1")
        return ray_nodes.start_head(self._dir(compute), self._temp_dir(compute), address)

    def _stop_node(self, compute: Compute, node: dict[str, Any]) -> None:
        ray_nodes.stop(node, self._dir(compute), ray_nodes.provider_of(compute))

    # --- lifecycle ---------------------------------------------------------------------
    def _provision(self, compute: Compute) -> None:
        self._start(compute)

    def _start(self, compute: Compute) -> None:
        missing = ray_missing()
        if missing:
            raise InvalidParameterValue(missing)
        if ray_attached.provider(compute):  # nothing to start: is it there, and which Ray?
            self._save(compute, ray_attached.connect(compute, self._dir(compute)))
            return
        with self._nodes_lock:
            state = self._state(compute)
            if not state or not ray_nodes.alive(state["head"]):
                state = self._head(compute)
            wanted = self.settings(compute)["min"]
            while len([w for w in state["workers"] if ray_nodes.alive(w)]) < wanted:
                if not self._start_worker(compute, state):
                    break
            self._save(compute, state)

    def _stop(self, compute: Compute) -> None:
        with self._nodes_lock:
            state = self._state(compute)
            for node in [*state.get("workers", []), state.get("head")]:
                if node:
                    self._stop_node(compute, node)
            if state:
                state["workers"] = []
                state["stopped"] = True  # asked for: the head is not to be restarted
                self._save(compute, state)

    def _delete(self, compute: Compute) -> None:
        self._stop(compute)
        shutil.rmtree(self._dir(compute), ignore_errors=True)
        temp_dir = Path(self._temp_dir(compute))
        for temp in temp_dir.parent.glob(temp_dir.name + "*"):
            shutil.rmtree(temp, ignore_errors=True)  # the head's and each node's

    def ready(self, compute: Compute) -> bool:
        """Up once the head answers. A head that exits while starting (a port taken
        between choosing it and binding it, on a busy host) is started again on fresh
        ports, twice; then the cluster fails with the end of the head's log."""
        state = self._state(compute)
        if state.get("attached"):
            return ray_attached.reachable(state) is True
        if state and not state.get("stopped") and not ray_nodes.alive(state["head"]):
            tries = int(state.get("head_tries", 0)) + 1
            if tries > HEAD_TRIES:
                tail = ray_nodes.log_tail(self._dir(compute) / "head.log")
                raise ComputeError(
                    f"cluster '{compute.name}': the Ray head exited {HEAD_TRIES} times while "
                    f"starting; its log ends:\n{tail}"
                )
            with self._nodes_lock:
                log.warning("cluster %s: the head exited while starting; again", compute.name)
                fresh = self._head(compute)
                fresh["head_tries"] = tries
                self._save(compute, fresh)
            return False
        # the head: workers come and go with the jobs
        return bool(state) and ray_nodes.dashboard_up(state, self._dir(compute))

    def _observe(self, compute: Compute) -> list[NodeState]:
        state = self._state(compute)
        if not state:
            return [NodeState(f"{compute.name}-head", "Stopped")]
        if state.get("attached"):
            return ray_attached.observe(compute.name, state, self._dir(compute))
        return ray_view.observe(
            compute.name, state, self._dir(compute), self.settings(compute),
            compute.cores,
        )  # fmt: skip

    # --- jobs --------------------------------------------------------------------------
    def _client(self, state: dict[str, Any], wait_s: float = ray_submit.AGENT_WAIT_S) -> Any:
        """The cluster's job API (a job's handle carries the same port and folder)."""
        return ray_submit.job_client(
            ray_nodes.api_url(state), ray_nodes.headers(Path(str(state["folder"]))), wait_s
        )

    def _spawn(self, ctx: LaunchContext, folder: Path) -> Handle:
        compute = ctx.compute
        state = self._state(compute)
        if state.get("attached"):
            return self._submit(ctx, folder, state)
        with self._nodes_lock:
            state = self._state(compute)
            if not state or not ray_nodes.alive(state["head"]):
                raise InvalidParameterValue(f"cluster '{compute.name}' is not running")
            deadline = time.monotonic() + 60
            while not ray_nodes.dashboard_up(state, self._dir(compute)):
                if time.monotonic() > deadline:
                    raise InvalidParameterValue(f"cluster '{compute.name}': Ray head not answering")
                time.sleep(0.2)
            limits = self.settings(compute)
            self._forget_lost(compute, state)  # a dead node is remembered, not dropped
            count = ray_nodes.nodes_needed(ctx.job.spec)
            needed = min(limits["max"], (ray_nodes.active_nodes(state) or 0) + count)
            starting = needed - len(state["workers"])
            if starting > 0:  # scale up for this job; the job says why it waits
                emit(
                    folder,
                    "Provisioning",
                    reason=f"starting {starting} of {needed} node{'s' if needed > 1 else ''} "
                    f"of cluster {compute.name}",
                )
            while len(state["workers"]) < needed:
                if not self._start_worker(compute, state):
                    break
            state["last_active"] = time.time()
            self._save(compute, state)
        ray_nodes.settle(compute.name, state, self._dir(compute))
        handle = self._submit(ctx, folder, state)
        with self._nodes_lock:  # the cluster's jobs, for what compute show says is busy
            state = self._state(compute)
            state["jobs"] = [*state.get("jobs", []), str(folder)][-200:]
            self._save(compute, state)
        return handle

    def _submit(self, ctx: LaunchContext, folder: Path, state: dict[str, Any]) -> Handle:
        """The job's supervisor as a Ray job: on a node of its own (``lapis_node``; one CPU
        on an attached cluster), or, for a gang, on the head (its driver reserves nodes)."""
        compute = ctx.compute
        gang = bool(self.job_extras(ctx))
        attached = bool(state.get("attached"))
        submission = ray_submit.submit_when_ready(
            self._client(state),
            entrypoint=f"{ctx.python} -m lapis.compute.supervisor {folder}",
            submission_id=f"lapis-{ctx.job.name}-{int(time.time() * 1000)}",
            entrypoint_num_cpus=0 if gang else 1,
            runtime_env=ray_submit.entry_env(),
            entrypoint_resources=None if gang or attached else {NODE_RESOURCE: 1},
            metadata={
                "lapis_job": ctx.job.name,
                "lapis_compute": compute.name,
                "lapis_nodes": str(ray_nodes.nodes_needed(ctx.job.spec)),
            },
        )
        handle: Handle = {
            "dir": str(folder),
            "submission_id": submission,
            "cluster": compute.name,
            "state_file": str(self._dir(compute) / "state.json"),
            "folder": str(self._dir(compute)),
        }
        if attached:
            return {**handle, "dashboard_url": state["dashboard_url"], "attached": True}
        return {
            **handle,
            "dashboard_port": state["dashboard_port"],
            "head_pid": state["head"]["pid"],
        }

    def _ray_status(self, handle: Handle) -> str | None:
        try:
            info = ray_nodes.job_api(handle, f"/api/jobs/{handle['submission_id']}")
        except LookupError:
            return "MISSING"  # the head does not know the job (not active)
        except (OSError, ValueError):
            return None
        return str(info.get("status"))

    def alive(self, handle: Handle) -> bool:
        if "submission_id" not in handle:
            return super().alive(handle)
        if not self._head_alive(handle):
            return False
        status = self._ray_status(handle)
        if status is None:  # the head did not answer: a job is lost only with its head
            return True
        if status not in ACTIVE:
            return False
        node = self._node_of(handle)  # Ray notices a dead node late: check its process now
        return node is None or ray_nodes.alive(node)

    def _head_alive(self, handle: Handle) -> bool:
        """Whether the head the job was submitted to still runs (not a restarted one); an
        attached cluster's, unless nothing listens at its address any more."""
        if handle.get("attached"):
            return ray_attached.reachable(handle) is not False
        try:
            state = json.loads(Path(str(handle["state_file"])).read_text())
        except (OSError, ValueError, KeyError):
            return False
        head = state.get("head")
        if not head or head["pid"] != handle.get("head_pid", head["pid"]):
            return False
        return ray_nodes.alive(head)

    def lost_reason(self, handle: Handle) -> str | None:
        if handle.get("attached"):
            return ray_attached.lost_reason(handle, self._ray_status(handle))
        if not self._head_alive(handle):
            said = ray_nodes.state_of(handle).get("lost_head_log")
            return (
                f"the head node of cluster {handle.get('cluster')} was lost while the job ran "
                "(the cluster's Ray state went with it); Lapis restarted the head"
                + (f". Its log ended: {said.splitlines()[-1]}" if said else "")
            )
        node = self._node_of(handle)
        if node is not None and node.get("preempted"):
            return f"node {handle.get('cluster')}-{node['index']} was pre-empted (low priority)"
        if node is not None and not ray_nodes.alive(node):
            return (
                f"node {handle.get('cluster')}-{node['index']} was lost while running the job "
                "(its Ray node process ended)"
            )
        return None

    def _node_of(self, handle: Handle) -> dict[str, Any] | None:
        """The worker running the job's supervisor (which wrote ``LAPIS_NODE_INDEX`` in)."""
        try:
            index = int(Path(str(handle["dir"]), NODE_FILE).read_text())
            state = json.loads(Path(str(handle["state_file"])).read_text())
        except (OSError, ValueError, KeyError):
            return None
        return next((w for w in state.get("lost", []) + state.get("workers", [])
                     if w["index"] == index), None)  # fmt: skip

    def cancel(self, handle: Handle, force: bool = False) -> None:
        """A forced cancel (a supervisor that does not answer) has Ray stop the job, ends
        the command's process tree when it runs on this host, and returns once Ray says
        the job ended (up to 15 s)."""
        super().cancel(handle, force=False)  # the supervisor's own cancel first
        if not force or "submission_id" not in handle:
            return
        try:
            self._client(handle, wait_s=0).stop_job(handle["submission_id"])  # no waiting: forced
        except Exception:
            log.warning("could not stop Ray job %s", handle["submission_id"])
        node = None if handle.get("attached") else self._node_of(handle)
        if node is not None and not node.get("host"):  # a local node: the pid is ours
            from lapis.compute.local import _running_pid
            from lapis.util.processes import kill_tree

            child = _running_pid(Path(str(handle["dir"])))
            if child:
                kill_tree(child, grace=1.0)
        deadline = time.monotonic() + 15
        while self._ray_status(handle) in ACTIVE and time.monotonic() < deadline:
            time.sleep(0.2)

    def _maintain(self, compute: Compute) -> None:
        """Once a second per cluster: forget lost nodes, start nodes for jobs that wait,
        keep the minimum, release idle ones. Ray is asked first (HTTP, outside the lock);
        the state is then read, changed and written under the lock, so a job's scale-up
        in ``_spawn`` meanwhile is never overwritten."""
        now = time.monotonic()
        if now - self._maintained.get(compute.name, 0.0) < MAINTAIN_SECONDS:
            return
        self._maintained[compute.name] = now
        state = self._state(compute)
        if not state or state.get("stopped") or state.get("attached"):
            return  # an attached cluster scales itself, if at all
        if not ray_nodes.alive(state["head"]):
            self._restart_head(compute)
            return
        active = ray_nodes.active_nodes(state)
        with self._nodes_lock:
            state = self._state(compute)
            if not state or not ray_nodes.alive(state["head"]):
                return
            self._forget_lost(compute, state)
            state["jobs"] = [f for f in state.get("jobs", []) if not ray_view.ended(Path(f))]
            self._scale_up(compute, state, active)
            if active:
                state["last_active"] = time.time()
            elif active == 0:
                self._scale_down(compute, state)
            self._save(compute, state)

    def _restart_head(self, compute: Compute) -> None:
        """A head that died took the cluster with it (Ray keeps no state of its own here):
        its workers cannot join a new head, so they are stopped, and the jobs that ran on
        them are reported lost (their handles name the old head); then a new head starts
        and the cluster scales up again for whatever comes next."""
        with self._nodes_lock:
            state = self._state(compute)
            if not state or state.get("stopped") or ray_nodes.alive(state["head"]):
                return
            said = ray_nodes.log_tail(self._dir(compute) / "head.log", 3)
            log.warning("cluster %s: the head died; restarting it. Its log: %s", compute.name, said)
            for w in state.get("workers", []):
                self._stop_node(compute, w)
            fresh = self._head(compute)
            fresh["next_index"] = state.get("next_index", 0)
            fresh["lost"] = (state.get("lost", []) + state.get("workers", []))[-20:]
            fresh["head_restarts"] = int(state.get("head_restarts", 0)) + 1
            fresh["lost_head_log"] = said
            self._save(compute, fresh)

    def preempt(self, compute: Compute, index: int | None) -> str:
        """Take a worker back (the drill of a low-priority cluster): busiest first."""
        if ray_attached.provider(compute):
            raise InvalidParameterValue(
                f"cluster '{compute.name}' is an attached Ray cluster: Lapis does not own its nodes"
            )
        with self._nodes_lock:
            state = self._state(compute)
            live = [w for w in state.get("workers", []) if ray_nodes.alive(w)]
            if index is not None:
                live = [w for w in live if w["index"] == index]
            if not live:
                which = f"node {compute.name}-{index}" if index is not None else "worker node"
                raise InvalidParameterValue(f"cluster '{compute.name}' has no running {which}")
            busy = set(ray_view.busy_nodes(state))
            node = sorted(live, key=lambda w: (w["index"] not in busy, w["index"]))[0]
            node["preempted"] = True
            self._save(compute, state)
            ray_nodes.kill(
                node, self._dir(compute), ray_nodes.provider_of(compute)
            )  # as the cloud does
        log.warning("cluster %s: node %d pre-empted (drill)", compute.name, node["index"])
        return f"{compute.name}-{node['index']}"

    def preempted(self, handle: Handle) -> bool:
        node = self._node_of(handle)
        return bool(node and node.get("preempted"))

    def _forget_lost(self, compute: Compute, state: dict[str, Any]) -> None:
        lost = [w for w in state.get("workers", []) if not ray_nodes.alive(w)]
        for w in lost:
            log.warning("cluster %s: worker node %d was lost", compute.name, w["index"])
            w["lost_at"] = time.time()
            ray_nodes.kill(
                w, self._dir(compute), ray_nodes.provider_of(compute)
            )  # what of it still runs
        if lost:
            state["workers"] = [w for w in state["workers"] if w not in lost]
            state["lost"] = (state.get("lost", []) + lost)[-20:]  # jobs name their node

    def _scale_up(self, compute: Compute, state: dict[str, Any], active: int | None) -> None:
        """Nodes for the minimum and for every job that is pending or running (one job per
        node, up to ``max_instances``): a raised minimum, a lost node or a job whose node
        went away is made up."""
        limits = self.settings(compute)
        wanted = max(limits["min"], min(limits["max"], active or 0))
        while len(state["workers"]) < wanted:
            if not self._start_worker(compute, state):
                break

    def _scale_down(self, compute: Compute, state: dict[str, Any]) -> None:
        """Nodes above the minimum go once no job has run for the idle time (and none
        started within it: a node just started is waited for by a job being submitted)."""
        extra = ray_nodes.idle_extra(state, self.settings(compute))
        for node in extra:
            log.info("cluster %s: releasing idle worker %d", compute.name, node["index"])
            self._stop_node(compute, node)
        state["workers"] = [w for w in state["workers"] if w not in extra]

    def capabilities(self, compute: Compute) -> dict[Any, str]:
        return {}  # multi-node and distributed jobs run as gangs (lapis/compute/ray/gang.py)

    def unsupported(self, compute: Compute, spec: Any) -> str | None:
        """A job asking for more nodes than the cluster may have would wait forever."""
        count = int(getattr(spec, "instance_count", 1))
        most = self.settings(compute)["max"]
        if count > most:
            return (
                f"the job asks for {count} nodes (resources.instance_count) but cluster "
                f"'{compute.name}' has at most {most} (max_instances); raise it with "
                f"`lapis compute update -n {compute.name} --max-instances {count}`"
            )
        return None

    def job_extras(self, ctx: LaunchContext) -> dict[str, Any]:
        return gang.order(ctx.job.spec, attached=bool(ray_attached.provider(ctx.compute)))
