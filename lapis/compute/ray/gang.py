"""A distributed job's gang on a Ray cluster: N nodes of P processes, started together.

A job with ``resources.instance_count: N`` (and ``distribution:``) on a cluster
is one Ray job whose entrypoint is the usual supervisor, on the head node; the
supervisor builds the environment and then runs this module's driver in place
of the user's command. The driver

1. reserves N worker nodes at once: a ``STRICT_SPREAD`` placement group of one
   ``lapis_node`` bundle per node, so the gang starts whole or waits whole
   (the cluster starts the nodes; the job says "starting k of N nodes");
2. puts one small actor on each bundle, which says where it is (address, the
   network interface holding it, a free port on node 0);
3. has every actor start P rank processes (``python -m lapis.compute.ray.gang rank``),
   each running the user's command with the variables Azure ML sets for the
   job's distribution type — PyTorch's ``MASTER_ADDR``…``LOCAL_RANK``, Open
   MPI's ``OMPI_COMM_WORLD_*``, TensorFlow's ``TF_CONFIG`` — and
   ``GLOO_SOCKET_IFNAME``/``NCCL_SOCKET_IFNAME`` naming the node's interface
   (gloo otherwise resolves the host name, often to loopback, and fails across
   hosts);
4. copies every rank's log (``user_logs/std_log_process_<rank>.txt``) into the
   job's log, prefixed ``[rank r]``, and waits: the first rank to fail, or a
   node that is lost, ends the gang with that rank's exit code and reason
   (``system_logs/gang.json``, read by the supervisor).

A rank process watches its parent (the actor) and the job's ``cancel`` file: when
either goes, it ends its command's whole process tree, so a killed driver, a
killed actor and a cancel all leave nothing running on any node.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lapis.compute.ray.nodes import NODE_RESOURCE
from lapis.compute.supervisor import CANCEL, JOB_FILE, emit

GANG_RESULT = "system_logs/gang.json"


def order(spec: dict[str, Any], attached: bool = False) -> dict[str, Any]:
    """What the supervisor of a job on a cluster is told to run: a gang when the job
    asks for more than one process (``{}``: the plain supervisor on one node). On an
    attached cluster a node is reserved by its CPUs (it has no ``lapis_node``)."""
    distribution = spec.get("distribution") or {}
    nodes = max(1, int(spec.get("instance_count") or 1))
    per_node = int(distribution.get("process_count_per_instance", 1))
    if nodes == 1 and per_node == 1 and distribution.get("type") != "tensorflow":
        return {}
    out: dict[str, Any] = {
        "nodes": nodes,
        "per_node": per_node,
        "type": distribution.get("type") or "pytorch",
        "worker_count": distribution.get("worker_count"),
    }
    if attached:
        out["bundle"] = {"CPU": float(per_node)}
    return {"gang": out}


def rank_log(rank: int) -> str:
    return f"user_logs/std_log_process_{rank}.txt"


# --- the layout: who is rank what, with which variables -----------------------------
def layout(gang: dict[str, Any]) -> list[list[int]]:
    """Global ranks per node: node k holds ranks k*P … k*P+P-1."""
    nodes, per_node = int(gang["nodes"]), int(gang["per_node"])
    return [[k * per_node + i for i in range(per_node)] for k in range(nodes)]


def rank_env(
    gang: dict[str, Any], rank: int, node_rank: int, places: list[dict[str, Any]]
) -> dict[str, str]:
    """The variables one rank gets. ``places``: per node, its ``address``, ``interface``
    and (node 0) ``port``."""
    per_node = int(gang["per_node"])
    world = int(gang["nodes"]) * per_node
    local = rank - node_rank * per_node
    master = places[0]["address"]
    port = str(places[0]["port"])
    here = places[node_rank]
    env = {
        "MASTER_ADDR": master,
        "MASTER_PORT": port,
        "WORLD_SIZE": str(world),
        "NODE_RANK": str(node_rank),
        "RANK": str(rank),
        "LOCAL_RANK": str(local),
        "LOCAL_WORLD_SIZE": str(per_node),
        "GROUP_RANK": str(node_rank),
        "AZ_BATCH_MASTER_NODE": f"{master}:{port}",
        "AZ_BATCHAI_MPI_MASTER_NODE": master,
        "AZUREML_NODE_COUNT": str(gang["nodes"]),
    }
    if here.get("interface"):
        env["GLOO_SOCKET_IFNAME"] = env["NCCL_SOCKET_IFNAME"] = str(here["interface"])
    kind = gang.get("type") or "pytorch"
    if kind == "mpi":
        env.update(
            {
                "OMPI_COMM_WORLD_RANK": str(rank),
                "OMPI_COMM_WORLD_SIZE": str(world),
                "OMPI_COMM_WORLD_LOCAL_RANK": str(local),
                "OMPI_COMM_WORLD_LOCAL_SIZE": str(per_node),
                "OMPI_COMM_WORLD_NODE_RANK": str(node_rank),
            }
        )
    elif kind == "tensorflow":
        env["TF_CONFIG"] = json.dumps(_tf_config(gang, rank, places))
    return env


def _tf_config(gang: dict[str, Any], rank: int, places: list[dict[str, Any]]) -> dict[str, Any]:
    """Workers first (worker 0 is the chief), then parameter servers; each task gets a
    port of its own on its node (``tf_ports``, found by that node's actor)."""
    workers = int(gang.get("worker_count") or 0)
    tasks = []
    for node_rank, ranks in enumerate(layout(gang)):
        for local, _ in enumerate(ranks):
            place = places[node_rank]
            tasks.append(f"{place['address']}:{place['tf_ports'][local]}")
    cluster: dict[str, list[str]] = {"worker": tasks[:workers]}
    if tasks[workers:]:
        cluster["ps"] = tasks[workers:]
    task = (
        {"type": "worker", "index": rank}
        if rank < workers
        else {"type": "ps", "index": rank - workers}
    )
    return {"cluster": cluster, "task": task, "environment": "cloud"}


# --- on each node: an actor -----------------------------------------------------------
def _interface_of(address: str) -> str | None:
    """The network interface that holds ``address`` (``lo`` for 127.0.0.1)."""
    import psutil

    for name, addrs in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and a.address == address for a in addrs):
            return name
    return None


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


class NodeAgent:
    """One per node of the gang (a Ray actor): where am I, start my ranks, wait, stop."""

    def __init__(self, job_dir: str, node_rank: int) -> None:
        self.job_dir = Path(job_dir)
        self.node_rank = node_rank
        self.procs: dict[int, Any] = {}

    def where(self, ports: int) -> dict[str, Any]:
        import ray

        here = ray.get_runtime_context().get_node_id()
        nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
        node = next((n for n in nodes if n["NodeID"] == here), {})
        # the address the node joined with (``--node-ip-address``), not the host's default
        address = str(node.get("NodeManagerAddress") or socket.gethostbyname(socket.gethostname()))
        resources: dict[str, float] = node.get("Resources", {})
        index = next(
            (k.rsplit("_", 1)[1] for k in resources if k.startswith(f"{NODE_RESOURCE}_")), here[:8]
        )  # fmt: skip  (an attached cluster's node: its id)
        return {
            "index": index,
            "address": address,
            "interface": _interface_of(address),
            "port": _free_port(address),
            "tf_ports": [_free_port(address) for _ in range(ports)],
            "host": socket.gethostname(),
        }

    def start(self, ranks: dict[int, dict[str, str]], command: str) -> list[int]:
        import subprocess

        sandbox = json.loads((self.job_dir / JOB_FILE).read_text()).get("sandbox")
        for rank, env in ranks.items():
            order = {
                "command": command,
                "env": env,
                "log": str(self.job_dir / rank_log(rank)),
                "cwd": str(self.job_dir / "wd"),
                "cancel": str(self.job_dir / CANCEL),
                "sandbox": sandbox,
            }
            self.procs[rank] = subprocess.Popen(
                [sys.executable, "-m", "lapis.compute.ray.gang", "rank", json.dumps(order)],
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return [p.pid for p in self.procs.values()]

    def wait(self) -> tuple[int, int, int]:
        """``(node_rank, rank, code)``: the first rank here that failed, else the last one
        that ended (code 0)."""
        last = (self.node_rank, -1, 0)
        pending = dict(self.procs)
        while pending:
            for rank, proc in list(pending.items()):
                code = proc.poll()
                if code is None:
                    continue
                del pending[rank]
                if code != 0:
                    return (self.node_rank, rank, code)
                last = (self.node_rank, rank, 0)
            time.sleep(0.1)
        return last

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)  # the rank ends its command's tree
        deadline = time.monotonic() + 2.0
        for proc in self.procs.values():
            with contextlib.suppress(Exception):
                proc.wait(max(0.0, deadline - time.monotonic()))


# --- a rank process --------------------------------------------------------------------
def run_rank(order: dict[str, Any]) -> int:
    """Run the command with the rank's variables; end its tree when the actor that started
    us goes, when the job is canceled, or on SIGTERM."""
    from lapis.compute import sandbox
    from lapis.util.processes import kill_tree

    parent = os.getppid()
    box = None
    spec = order.get("sandbox")
    if spec:
        box = sandbox.prepare(spec.get("deny") or [], spec.get("allow") or [],
                              spec.get("read_only") or [])  # fmt: skip
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    Path(order["log"]).parent.mkdir(parents=True, exist_ok=True)
    with open(order["log"], "ab", buffering=0) as log:
        proc = sandbox.spawn(
            box,
            ["/bin/bash", "-c", order["command"]],
            cwd=order["cwd"],
            env=order["env"],
            stdin=-3,  # subprocess.DEVNULL
            stdout=log,
            stderr=-2,  # subprocess.STDOUT
            start_new_session=True,
        )
    cancel = Path(order["cancel"])
    while proc.poll() is None:
        if stop.is_set() or os.getppid() != parent or cancel.exists():
            kill_tree(proc.pid, grace=1.0)
            proc.wait()
            return 143
        stop.wait(0.2)
    kill_tree(proc.pid, grace=0.5)  # background children of the command
    return int(proc.returncode)


# --- the driver -------------------------------------------------------------------------
class _Logs:
    """Copies each rank's log file into our stdout (the job's log), line by line."""

    def __init__(self, job_dir: Path, ranks: list[int]) -> None:
        self.files = {r: job_dir / rank_log(r) for r in ranks}
        self.offsets = dict.fromkeys(ranks, 0)
        self.partial = dict.fromkeys(ranks, b"")

    def pump(self, final: bool = False) -> None:
        for rank, path in self.files.items():
            try:
                with open(path, "rb") as fh:
                    fh.seek(self.offsets[rank])
                    data = fh.read()
            except FileNotFoundError:
                continue
            self.offsets[rank] += len(data)
            lines = (self.partial[rank] + data).split(b"\n")
            rest = lines.pop()  # a line still being written
            if final and rest:
                lines.append(rest)
                rest = b""
            self.partial[rank] = rest
            for line in lines:
                sys.stdout.write(f"[rank {rank}] {line.decode(errors='replace')}\n")
        sys.stdout.flush()

    def tail(self, rank: int, lines: int = 10) -> str:
        try:
            text = self.files[rank].read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _result(job_dir: Path, outcome: str, reason: str) -> None:
    path = job_dir / GANG_RESULT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"outcome": outcome, "reason": reason}))


def drive(job_dir: Path) -> int:
    import ray
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    job = json.loads((job_dir / JOB_FILE).read_text())
    gang = job["gang"]
    nodes = int(gang["nodes"])
    signal.signal(signal.SIGTERM, _interrupt)  # the supervisor's cancel: stop the ranks first
    ranks = layout(gang)
    per_node = int(gang["per_node"])
    logs = _Logs(job_dir, [r for node in ranks for r in node])
    agents: list[Any] = []
    group = None
    try:
        ray.init(address="auto", logging_level=30, log_to_driver=False)
        bundle = gang.get("bundle") or {NODE_RESOURCE: 1.0}
        bundles = [dict(bundle) for _ in range(nodes)]
        group = placement_group(bundles, strategy="STRICT_SPREAD")
        cluster = job["env"].get("LAPIS_COMPUTE", "cluster")
        try:
            ray.get(group.ready(), timeout=1.0)
        except ray.exceptions.GetTimeoutError:  # the cluster is starting nodes for us
            waiting = f"waiting for {nodes} node{'s' if nodes > 1 else ''} of cluster {cluster}"
            print(waiting, flush=True)
            emit(job_dir, "Provisioning", reason=waiting)
            ray.get(group.ready())
        emit(job_dir, "Starting")
        agent = ray.remote(NodeAgent)
        agents = [
            agent.options(
                num_cpus=0,
                max_concurrency=4,  # stop() must run while wait() blocks
                resources=None if gang.get("bundle") else {NODE_RESOURCE: 1.0},
                scheduling_strategy=PlacementGroupSchedulingStrategy(group, k),
            ).remote(str(job_dir), k)
            for k in range(nodes)
        ]
        places = ray.get([a.where.remote(per_node) for a in agents])
        where = ", ".join(
            f"node {k} is {cluster}-{p['index']} at {p['address']} ({p['interface']})"
            for k, p in enumerate(places)
        )
        gang_nodes = job_dir / "system_logs" / "gang_nodes.json"  # compute show: busy nodes
        gang_nodes.write_text(json.dumps([p["index"] for p in places]))
        master = f"{places[0]['address']}:{places[0]['port']}"
        print(f"gang of {nodes} nodes x {per_node} processes: {where}; master {master}", flush=True)
        for k, a in enumerate(agents):
            # the job's own environment (the supervisor's: its Python first on PATH, its
            # variables), not the Ray worker's that the actor runs in
            envs = {r: {**os.environ, **rank_env(gang, r, k, places)} for r in ranks[k]}
            ray.get(a.start.remote(envs, job["command"]))
        emit(job_dir, "Running", pid=os.getpid())
        return _await(job_dir, agents, logs, places, cluster)
    except KeyboardInterrupt:
        _result(job_dir, "Canceled", "canceled by request")
        return 143
    finally:
        for ref in [a.stop.remote() for a in agents]:
            with contextlib.suppress(Exception):
                ray.get(ref, timeout=3)
        logs.pump(final=True)
        if group is not None:
            with contextlib.suppress(Exception):
                ray.util.remove_placement_group(group)


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def _await(
    job_dir: Path, agents: list[Any], logs: _Logs, places: list[dict[str, Any]], cluster: str
) -> int:
    import ray
    from ray.exceptions import RayActorError

    waits = {a.wait.remote(): k for k, a in enumerate(agents)}
    while waits:
        done, _ = ray.wait(list(waits), timeout=0.2)
        logs.pump()
        for ref in done:
            node = waits.pop(ref)
            try:
                _, rank, code = (int(x) for x in ray.get(ref))
            except RayActorError as exc:
                reason = (
                    f"node {cluster}-{places[node]['index']} was lost while running the job "
                    f"(gang node {node}: {exc.__class__.__name__})"
                )
                _result(job_dir, "Failed", reason)
                print(reason, flush=True)
                return 1
            if code != 0:
                logs.pump(final=True)
                tail = logs.tail(rank)
                reason = f"rank {rank} (node {node}) failed with exit code {code}" + (
                    f"; its last log lines:\n{tail}" if tail else ""
                )
                _result(job_dir, "Failed", reason)
                return code
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "rank":
        return run_rank(json.loads(args[1]))
    if len(args) != 1:
        sys.stderr.write("usage: python -m lapis.compute.ray.gang JOB_DIR | rank ORDER\n")
        return 2
    return drive(Path(args[0]))


if __name__ == "__main__":
    sys.exit(main())
