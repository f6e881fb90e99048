"""The processes of a local-provider Ray cluster: its head and worker nodes.

Every node is a ``ray start --block`` process leading its own process group, with
every port it listens on chosen free (several clusters share one host). Ray
resolves a loopback ``--node-ip-address`` to the host's reachable address, so
the GCS and the nodes listen there: every cluster therefore runs with Ray's token
authentication (``RAY_AUTH_MODE=token``), its token in the cluster's folder
(mode 0600, inside the workspace home that job sandboxes cannot read), and the
dashboard and job API listen on loopback only. Lapis talks to the job API with
the token as a bearer header; nothing else has it.

Ray's health checks are tightened (1 s period, 3 misses) so a node that dies is
declared dead in seconds, not in Ray's default fifteen or more.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lapis.util.processes import kill_tree, same_process, start_time_ms

NODE_RESOURCE = "lapis_node"
TOKEN_FILE = "auth_token"
NODE_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "token",
    # a gang's rank process outlives a killed actor just long enough to end its command's
    # tree (lapis/compute/ray/gang.py); Ray's own sweep would SIGKILL it and orphan the tree
    "RAY_kill_child_processes_on_worker_exit": "0",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}
# The coverage hook (coverage's subprocess patch) measures Lapis' code; in Ray's own Python
# daemons it doubled a node's start on a loaded host, past the 15 s Ray gives a raylet's
# agent (``STARTS_AT_ONCE``), and nodes were lost in a loop. The daemons go without it;
# a job's entrypoint has it back through its runtime environment (``submit.entry_env``).
MEASURED = ("COVERAGE_PROCESS_CONFIG",)


# Ports for Ray's listeners come from below the kernel's ephemeral range (32768+ on Linux)
# and above Ray's worker ports (10002-19999): a port picked now is bound by Ray a moment
# later, and in between any outgoing connection could be given it as its source port.
PORTS = (20000, 32000)


_GIVEN: dict[int, float] = {}  # port -> when handed out: not again until Ray has bound it
_GIVING = threading.Lock()


def free_port() -> int:
    """A port free now and not handed out by this process in the last two minutes (a
    node's six ports are chosen before any is bound: one must never be given twice)."""
    with _GIVING:
        return _free_port()


def _free_port() -> int:
    import random

    now = time.monotonic()
    for port, when in list(_GIVEN.items()):
        if now - when > 120:
            del _GIVEN[port]
    for _ in range(200):
        port = random.randrange(*PORTS)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("", port))  # free on every address: Ray listens on the host's
            except OSError:
                continue
            _GIVEN[port] = now
            return port
    with socket.socket() as s:  # a crowded range: let the kernel choose
        s.bind(("", 0))
        return int(s.getsockname()[1])


def node_ports() -> dict[str, int]:
    """Every port a Ray node listens on, free now: two nodes on one host must not share."""
    keys = (
        "node-manager-port",
        "object-manager-port",
        "metrics-export-port",
        "dashboard-agent-listen-port",
        "dashboard-agent-grpc-port",
        "runtime-env-agent-port",
    )
    return {k: free_port() for k in keys}


def ray_cli() -> str:
    beside = Path(sys.executable).parent / "ray"
    return str(beside) if beside.exists() else "ray"


def token(folder: Path) -> str:
    """The cluster's Ray token, made once (0600)."""
    path = folder / TOKEN_FILE
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def headers(folder: Path) -> dict[str, str]:
    """What Lapis sends with every call to the cluster's job API (an attached cluster may
    have no token)."""
    try:
        return {"Authorization": f"Bearer {(folder / TOKEN_FILE).read_text().strip()}"}
    except OSError:
        return {}


def api_url(where: dict[str, Any]) -> str:
    """The job API of a cluster (its state, or a job's handle): on loopback for a cluster
    Lapis runs, the given address for an attached one."""
    return str(where.get("dashboard_url") or f"http://127.0.0.1:{where['dashboard_port']}")


def spawn(folder: Path, argv: list[str], name: str, extra: dict[str, str]) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    token(folder)
    env = {**os.environ, **NODE_ENV, "RAY_AUTH_TOKEN_PATH": str(folder / TOKEN_FILE), **extra}
    for k in ("RAY_AUTH_TOKEN", *MEASURED):  # a token of the server's own never wins
        env.pop(k, None)
    out = open(folder / f"{name}.log", "ab")  # noqa: SIM115 (handed to the child)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
        )
    finally:
        out.close()
    return {"name": name, "pid": proc.pid, "start": start_time_ms(proc.pid)}


def start_head(folder: Path, temp_dir: str, address: str = "127.0.0.1") -> dict[str, Any]:
    """The head on this host; ``address``: where an ssh provider's nodes reach it."""
    gcs, dashboard, client = free_port(), free_port(), free_port()
    argv = [
        ray_cli(), "start", "--head", "--block", "--num-cpus=0",
        f"--node-ip-address={address}", f"--port={gcs}",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
        f"--ray-client-server-port={client}", "--include-dashboard=true",
        f"--temp-dir={temp_dir}", "--disable-usage-stats",
    ]  # fmt: skip
    argv += [f"--{k}={v}" for k, v in node_ports().items()]
    head = spawn(folder, argv, "head", {})
    return {
        "head": head,
        "head_address": address,
        "gcs_port": gcs,
        "dashboard_port": dashboard,
        "workers": [],
        "last_active": time.time(),
    }


def start_worker(
    folder: Path,
    temp_dir: str,
    state: dict[str, Any],
    cores: int,
    memory_gib: float,
    provider: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """One more worker node (None: an ssh provider with every host taken); a replacement
    gets a new index (and so a new name), since Ray never lets a node it declared dead
    rejoin."""
    if provider and provider.get("type") == "ssh":
        return _start_ssh_worker(folder, temp_dir, state, cores, memory_gib, provider)
    index = int(state.get("next_index", 0))
    state["next_index"] = index + 1
    # A folder of its own: two nodes started at once in one folder race for the same
    # socket names there ("bind: Address already in use", and the node never joins).
    own = f"{temp_dir}-n{index}"
    argv = [
        ray_cli(), "start", "--block", f"--address=127.0.0.1:{state['gcs_port']}",
        "--node-ip-address=127.0.0.1", f"--num-cpus={max(cores, 1)}",
        f"--memory={int(memory_gib * 2**30)}",
        f"--resources={json.dumps({NODE_RESOURCE: 1, f'{NODE_RESOURCE}_{index}': 1})}",
        f"--temp-dir={own}", "--disable-usage-stats",
    ]  # fmt: skip
    argv += [f"--{k}={v}" for k, v in node_ports().items()]
    log = folder / f"worker-{index}.log"  # appended to: ``joined`` reads what is new
    log_at = log.stat().st_size if log.exists() else 0
    # the supervisor of a job on this node reads its index here (lapis/compute/supervisor.py)
    node = spawn(folder, argv, f"worker-{index}", {"LAPIS_NODE_INDEX": str(index)})
    node.update(index=index, started_at=time.time(), temp=own, log_at=log_at)
    state["workers"].append(node)
    return node


# Most of a node's start is Ray's Python agents importing (CPU seconds), and a raylet
# whose agent has not written its port within 15 s aborts (a limit Ray fixes). Two nodes
# starting at once on a loaded 2-core host took 15-18 s each and died in a loop, so nodes
# that share this host start a few at a time: one per four cores, at least one.
STARTS_AT_ONCE = max(1, (os.cpu_count() or 1) // 4)
JOIN_WAIT_S = 60.0  # a node not up by then no longer holds the next one back


def joined(node: dict[str, Any], folder: Path) -> bool:
    """Whether a node's ``ray start`` said it is up (its raylet registered with the GCS)."""
    if not node.get("joined"):
        try:
            with open(folder / f"worker-{node['index']}.log", "rb") as log:
                log.seek(int(node.get("log_at", 0)))
                node["joined"] = b"Ray runtime started" in log.read()
        except OSError:
            return False
    return bool(node["joined"])


def may_start(state: dict[str, Any], folder: Path) -> bool:
    """Whether another node of this host may start now (see ``STARTS_AT_ONCE``)."""
    starting = [
        w for w in state["workers"]
        if alive(w) and not joined(w, folder) and time.time() - w["started_at"] < JOIN_WAIT_S
    ]  # fmt: skip
    return len(starting) < STARTS_AT_ONCE


def _start_ssh_worker(
    folder: Path,
    temp_dir: str,
    state: dict[str, Any],
    cores: int,
    memory_gib: float,
    provider: dict[str, Any],
) -> dict[str, Any] | None:
    """``ray start --block`` on a free host, through ssh: the ssh client is the node's
    process here (it lives while the remote node does); the remote node leads a process
    group of its own whose id it leaves in a file on that host, so stopping it is one
    ``kill`` of the group over ssh. The token is read from the shared workspace home."""
    import shlex

    taken = {w.get("host") for w in state["workers"] if alive(w)}
    free = [h for h in provider["hosts"] if h not in taken]
    if not free:
        return None
    host = free[0]
    index = int(state.get("next_index", 0))
    state["next_index"] = index + 1
    ray = provider.get("ray") or ray_cli()
    pidfile = f"{temp_dir}-node-{index}.pid"
    argv = [
        ray, "start", "--block", f"--address={state['head_address']}:{state['gcs_port']}",
        f"--node-ip-address={host}", f"--num-cpus={max(cores, 1)}",
        f"--memory={int(memory_gib * 2**30)}",
        f"--resources={json.dumps({NODE_RESOURCE: 1, f'{NODE_RESOURCE}_{index}': 1})}",
        f"--temp-dir={temp_dir}", "--disable-usage-stats",
    ]  # fmt: skip
    env = {**NODE_ENV, "RAY_AUTH_TOKEN_PATH": str(folder / TOKEN_FILE),
           "LAPIS_NODE_INDEX": str(index)}  # fmt: skip
    inner = " ".join(
        ["echo $$ >", shlex.quote(pidfile), "&& exec env"]
        + [shlex.quote(f"{k}={v}") for k, v in env.items()]
        + [shlex.quote(a) for a in argv]
    )
    remote = f"exec setsid sh -c {shlex.quote(inner)}"
    node = spawn(folder, [*ssh_argv(folder, provider, host), remote], f"worker-{index}", {})
    node.update(index=index, started_at=time.time(), host=host, pidfile=pidfile)
    state["workers"].append(node)
    return node


def ssh_argv(folder: Path, provider: dict[str, Any], host: str) -> list[str]:
    argv = [
        "ssh", "-T", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
        "-o", f"UserKnownHostsFile={folder / 'known_hosts'}", "-o", "ServerAliveInterval=5",
    ]  # fmt: skip
    if provider.get("identity_file"):
        argv += ["-i", str(provider["identity_file"]), "-o", "IdentitiesOnly=yes"]
    target = f"{provider['user']}@{host}" if provider.get("user") else host
    return [*argv, target]


def _remote_kill(node: dict[str, Any], folder: Path, provider: dict[str, Any], sig: str) -> None:
    """Signal the remote node's whole process group (its id is in the node's pid file)."""
    pidfile = node["pidfile"]
    command = f'p=$(cat {pidfile} 2>/dev/null) && kill -{sig} -- -"$p" 2>/dev/null; true'
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [*ssh_argv(folder, provider, str(node["host"])), command],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=20,
        )  # fmt: skip


def alive(node: dict[str, Any]) -> bool:
    pid = int(node["pid"])
    if not same_process(pid, node.get("start")):
        return False
    try:  # a node this server started and that died is a zombie until reaped
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child (started by an earlier server)
        import psutil

        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False
    return done == 0


def stop(node: dict[str, Any], folder: Path | None = None, provider: Any = None) -> None:
    """End a node: its whole process group (``ray start`` leads it; a raylet outliving a
    killed ``ray start`` is still in it); on an ssh host, that group there first."""
    if node.get("host") and folder is not None and provider:
        _remote_kill(node, folder, provider, "TERM")
        deadline = time.monotonic() + 5
        while alive(node) and time.monotonic() < deadline:
            time.sleep(0.1)
        _remote_kill(node, folder, provider, "KILL")
    pid = int(node["pid"])
    if alive(node):
        kill_tree(pid, grace=5.0)
    kill_group(pid)
    if node.get("temp") and not node.get("host"):  # its sessions, logs and spilled objects
        import shutil

        shutil.rmtree(str(node["temp"]), ignore_errors=True)


def kill(node: dict[str, Any], folder: Path, provider: Any = None) -> None:
    """End a node at once, as a crash or a pre-emption would."""
    if node.get("host") and provider:
        _remote_kill(node, folder, provider, "KILL")
    kill_group(int(node["pid"]))


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def dashboard_up(state: dict[str, Any], folder: Path) -> bool:
    import urllib.request

    try:
        url = f"{api_url(state)}/api/version"
        request = urllib.request.Request(url, headers=headers(folder))
        with urllib.request.urlopen(request, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


SETTLE_SECONDS = 20.0


def settle(name: str, state: dict[str, Any], folder: Path) -> None:
    """Wait (up to 20 s) until Ray no longer counts a node that is gone: a job placed
    on a dead node it has not yet noticed would fail there before it started."""
    import logging

    ours = {int(w["index"]) for w in state["workers"]}
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        seen = ray_alive(state, folder)
        if seen is None or seen <= ours:
            return
        time.sleep(0.25)
    logging.getLogger("lapis.compute.ray").warning(
        "cluster %s: Ray still counts a lost node; submitting anyway", name
    )


def log_tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def ray_alive(state: dict[str, Any], folder: Path) -> set[int] | None:
    """Indexes of the worker nodes Ray still counts ALIVE; None when it did not answer.
    Ray takes seconds to declare a killed node dead, and until then would place work on
    it (work that then fails there)."""
    import urllib.request

    url = f"http://127.0.0.1:{state['dashboard_port']}/api/v0/nodes?limit=1000&detail=true"
    try:
        request = urllib.request.Request(url, headers=headers(folder))
        with urllib.request.urlopen(request, timeout=5) as resp:
            body = json.load(resp)
        listed = body["data"]["result"]["result"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    found: set[int] = set()
    for node in listed:
        if node.get("state") != "ALIVE":
            continue
        for key in node.get("resources_total") or {}:
            if key.startswith(f"{NODE_RESOURCE}_"):
                found.add(int(key.rsplit("_", 1)[1]))
    return found


def job_api(where: dict[str, Any], path: str, timeout: float = 5.0) -> Any:
    """GET on a cluster's job API (``where``: its state, or a job's handle) with a deadline:
    these calls run on the scheduler's tick, which a slow head must never hold up. Raises
    OSError (a timeout, a refusal) or LookupError (404: no such job)."""
    import urllib.error
    import urllib.request

    url = f"{api_url(where)}{path}"
    folder = where.get("folder") or Path(str(where["state_file"])).parent  # older handles
    request = urllib.request.Request(url, headers=headers(Path(str(folder))))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise LookupError(path) from exc
        raise


# --- what a cluster's state and a job's spec say -------------------------------------
ACTIVE = ("PENDING", "RUNNING")


def active_nodes(state: dict[str, Any]) -> int | None:
    """Nodes that pending and running Ray jobs need (a gang needs its N); None when the
    head did not answer (a busy host): unknown is never taken for zero, which would
    release a node a job waits for."""
    try:
        jobs = job_api(state, "/api/jobs/")
    except (OSError, LookupError, ValueError):
        return None
    return sum(nodes_of_job(j) for j in jobs if str(j.get("status")) in ACTIVE)


def idle_extra(state: dict[str, Any], limits: dict[str, int]) -> list[dict[str, Any]]:
    """The workers above the minimum to release: once no job has run for the idle time,
    those that have been up that long too (a node just started is waited for by a job
    being submitted)."""
    live = state["workers"]
    if len(live) <= limits["min"]:
        return []
    if time.time() - float(state.get("last_active", 0)) < limits["idle"]:
        return []
    settled = [w for w in live if time.time() - float(w.get("started_at", 0)) >= limits["idle"]]
    return sorted(settled, key=lambda w: w["index"])[: len(live) - limits["min"]]


def state_of(handle: dict[str, Any]) -> dict[str, Any]:
    try:
        found: dict[str, Any] = json.loads(Path(str(handle["state_file"])).read_text())
    except (OSError, ValueError, KeyError):
        return {}
    return found


def provider_of(compute: Any) -> dict[str, Any] | None:
    """The cluster's ssh provider settings; None for the local provider."""
    found = compute.properties.get("provider")
    return found if isinstance(found, dict) and found.get("type") == "ssh" else None


def nodes_needed(spec: dict[str, Any]) -> int:
    """Nodes a job needs at once (``resources.instance_count``)."""
    return max(1, int(spec.get("instance_count") or 1))


def nodes_of_job(job: dict[str, Any]) -> int:
    try:
        return max(1, int((job.get("metadata") or {}).get("lapis_nodes", 1)))
    except (TypeError, ValueError):
        return 1
