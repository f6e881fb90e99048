"""Server lifecycle for the benchmarks: start, wait, measure, and always stop.

Every server under test runs in its own session (process group) with a fresh
temporary home, on a free loopback port. `ServerHandle.stop` ends the whole
group and then any descendant that escaped it, so a bench run leaves nothing
behind, even after Ctrl+C or an error (callers use the handle as a context
manager).

Memory is reported as RSS summed over the server's whole process tree, as the
issue asks; PSS (which splits shared pages fairly) is recorded alongside in
the JSON because RSS double-counts pages shared between forked workers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 120.0

# Both clients and servers get these so no one tries to phone home mid-measurement.
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
# A failing server should cost its row quickly, not minutes of the client's backoff
# (default: 7 retries with exponential backoff). Same for every server.
CLIENT_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
# Never let a caller's own tracking setup leak into a server or a client.
SCRUBBED_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "LAPIS_URL",
    "LAPIS_TOKEN",
    "LAPIS_HOME",
    "LAPIS_DATABASE_URL",
    "LAPIS_ARTIFACT_ROOT",
)


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.update(QUIET_ENV)
    env.update(extra or {})
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def executable(name: str) -> str | None:
    """The console script installed next to this interpreter, else one on PATH."""
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except Exception:
        return False


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_memory(pid: int) -> dict[str, float]:
    """RSS (and PSS where readable) summed over a process tree, in MiB."""
    rss = pss = 0
    count = 0
    for proc in tree(pid):
        try:
            rss += proc.memory_info().rss
            count += 1
            with contextlib.suppress(psutil.AccessDenied, AttributeError):
                pss += proc.memory_full_info().pss
        except psutil.NoSuchProcess:
            continue
    return {"rss_mib": rss / 2**20, "pss_mib": pss / 2**20, "processes": count}


def wait_idle(pid: int, max_wait_s: float = 30.0) -> None:
    """Wait until the tree stops forking and settles near zero CPU.

    MLflow keeps spawning job-runner processes for a while after /health
    answers; measuring then would under-count it.
    """
    deadline = time.monotonic() + max_wait_s
    calm = 0
    last_count = -1
    procs: dict[int, psutil.Process] = {}
    while time.monotonic() < deadline:
        current = tree(pid)
        for p in current:
            if p.pid not in procs:
                procs[p.pid] = p
                with contextlib.suppress(psutil.Error):
                    p.cpu_percent(None)
        time.sleep(1.0)
        cpu = 0.0
        for p in current:
            with contextlib.suppress(psutil.Error):
                cpu += procs[p.pid].cpu_percent(None)
        calm = calm + 1 if len(current) == last_count and cpu < 10.0 else 0
        last_count = len(current)
        if calm >= 2:
            return


@dataclass
class ServerHandle:
    """One running server under test; stop() is idempotent and kills the whole tree."""

    name: str
    label: str
    home: Path
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    token: str | None = None
    health_path: str = "/health"
    startup_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def client_env(self) -> dict[str, str]:
        extra = {**CLIENT_ENV, "MLFLOW_TRACKING_URI": self.url}
        if self.token:
            extra["MLFLOW_TRACKING_TOKEN"] = self.token
            extra["LAPIS_URL"] = self.url
            extra["LAPIS_TOKEN"] = self.token
            extra["LAPIS_HOME"] = str(self.home)
        return clean_env(extra)

    def _spawn(self, argv: list[str]) -> None:
        log = open(self.home / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            argv,
            cwd=self.home,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.label} exited with code {self.proc.returncode} during start-up:\n"
                + self.log_tail()
            )

    def log_tail(self, lines: int = 25) -> str:
        path = self.home / "server.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < START_TIMEOUT_S:
            self._check_alive()
            if self.url and http_ok(self.url + self.health_path):
                self.startup_s = time.monotonic() - t0
                return
            time.sleep(0.2)
        msg = f"{self.label} not ready after {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}"
        raise RuntimeError(msg)

    def memory(self) -> dict[str, float]:
        assert self.proc is not None
        return tree_memory(self.proc.pid)

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        stragglers = tree(proc.pid)
        try:
            kill_group(proc.pid, proc)
        finally:
            for p in stragglers:  # anything that left the group (setsid) still dies
                with contextlib.suppress(psutil.Error):
                    p.kill()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def kill_group(pgid: int, proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is still there."""
    try:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
    finally:  # a second Ctrl+C during the grace period must not leave the group running
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def start_mlflow(workers: int | None) -> ServerHandle:
    """MLflow's own server: SQLite backend, proxied artifacts in a temp root."""
    exe = executable("mlflow")
    if exe is None:
        raise RuntimeError("`mlflow` not found: pip install 'lapis[dev]'")
    name = "mlflow-default" if workers is None else f"mlflow-w{workers}"
    label = "MLflow default" if workers is None else f"MLflow --workers {workers}"
    home = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    handle = ServerHandle(name=name, label=label, home=home, health_path="/health")
    try:
        port = free_port()
        argv = [
            exe, "server",
            "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
            "--serve-artifacts",
            "--artifacts-destination", str(home / "artifacts"),
            "--host", "127.0.0.1",
            "--port", str(port),
        ]  # fmt: skip
        if workers is not None:
            argv += ["--workers", str(workers)]
        handle.url = f"http://127.0.0.1:{port}"
        handle._spawn(argv)
        handle.wait_ready()
    except BaseException:
        handle.cleanup()
        raise
    return handle


def start_noop() -> ServerHandle:
    """The do-nothing server (bench/_noop.py): the ceiling a single client call can reach."""
    home = Path(tempfile.mkdtemp(prefix="bench-noop-"))
    handle = ServerHandle(name="noop", label="no-op server (ceiling)", home=home, health_path="/")
    try:
        port = free_port()
        handle.url = f"http://127.0.0.1:{port}"
        handle._spawn([sys.executable, str(Path(__file__).with_name("_noop.py")), str(port)])
        handle.wait_ready()
    except BaseException:
        handle.cleanup()
        raise
    return handle


def start_lapis(database_url: str | None = None, label: str = "Lapis") -> ServerHandle:
    """`lapis server --port 0`: the URL comes from server.json, the token from credentials.json."""
    exe = executable("lapis")
    argv_head = [exe] if exe else [sys.executable, "-m", "lapis.cli.main"]
    home = Path(tempfile.mkdtemp(prefix="bench-lapis-"))
    handle = ServerHandle(name="lapis", label=label, home=home, health_path="/healthz")
    try:
        argv = [*argv_head, "server", "--home", str(home), "--port", "0"]
        if database_url:
            argv += ["--database-url", database_url]
        handle._spawn(argv)
        t0 = time.monotonic()
        while not handle.url:
            handle._check_alive()
            if time.monotonic() - t0 > START_TIMEOUT_S:
                raise RuntimeError(f"Lapis wrote no server.json:\n{handle.log_tail()}")
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, KeyError):
                handle.url = json.loads((home / "server.json").read_text())["url"]
            time.sleep(0.1)
        handle.wait_ready()
        handle.startup_s = time.monotonic() - t0
        handle.token = json.loads((home / "credentials.json").read_text())["token"]
    except BaseException:
        handle.cleanup()
        raise
    return handle


def run_client(
    server: ServerHandle, args: list[str], timeout_s: float
) -> tuple[int, dict[str, Any]]:
    """Run bench/_client.py in its own process group against `server`; return its JSON.

    The workload never runs in this process, so the orchestrator's own CPU use
    does not land on the cores the server under test is using.
    """
    out = server.home / f"client-{time.monotonic_ns()}.json"
    argv = [sys.executable, str(Path(__file__).with_name("_client.py")), "--out", str(out), *args]
    proc = subprocess.Popen(argv, env=server.client_env(), start_new_session=True)
    rc: int | None = None
    try:
        rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pass
    finally:
        # Always: also ends the client's own children (the concurrent workers share its group).
        kill_group(proc.pid, proc, grace_s=2.0)
    result: dict[str, Any] = {}
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
        result = json.loads(out.read_text())
    if rc is None:
        result["_error"] = f"client timed out after {timeout_s:.0f} s"
    return (-1 if rc is None else rc), result
