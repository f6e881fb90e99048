"""SSH into a compute instance: its user's shell in the workspace file share, and port
forwarding, so ``ssh`` and VS Code's Remote-SSH work against a Lapis instance.

An instance created with ``ssh_public_access_enabled: true`` and
``ssh_settings.ssh_key_value`` (both fixed at creation, as on Azure) gets, while it is
Running, an SSH server of its own (asyncssh) on a port of this host:
- it lets in exactly that public key — no passwords, no other key — under Azure's user
  name ``azureuser`` (the instance's user's name works too);
- a session runs the command, or a login shell on a terminal, in the user's folder of the
  file share with the instance's cores, as JupyterLab's terminals do;
- ``direct-tcpip`` forwarding (``ssh -L``, what Remote-SSH uses) reaches loopback ports of
  this host only: nothing beyond the machine is reached through it;
- open sessions count as activity, so idle shutdown waits for them (Azure's rule).

The host key is the workspace's (``<home>/notebooks/ssh_host_ed25519_key``, 0600), so a
client that trusted it once keeps trusting it; each instance keeps its port across server
restarts when it is free (``<home>/notebooks/<instance>/ssh.json``).

All servers run on one asyncio loop in one thread; ``sync`` (from the lab manager's pass)
says which should run.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import pty
import shutil
import struct
import termios
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("lapis.notebooks.ssh")
SSH_USER = "azureuser"  # the name Azure's instances take SSH logins under
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class SshTarget:
    """What an instance's SSH server serves: who, which key, where they land."""

    instance: str
    user: str
    key: str
    folder: Path
    cpus: tuple[int, ...] = ()


@dataclass
class _Running:
    target: SshTarget
    server: Any
    port: int
    sessions: set[Any] = field(default_factory=set)


class SshGateway(threading.Thread):
    def __init__(self, root: Path, host: str, confine: Any = None) -> None:
        super().__init__(name="lapis-ssh", daemon=True)
        self.root = root
        self.confine = confine  # sessions' sandbox (lapis/notebooks/confine.py); None: none
        self.host = host  # the interface the Lapis server listens on
        self.loop = asyncio.new_event_loop()
        self.servers: dict[str, _Running] = {}
        self._ready = threading.Event()
        self.available = _asyncssh_installed()

    # --- asked from other threads --------------------------------------------------------
    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._ready.set()
        self.loop.run_forever()

    def sync(self, wanted: dict[str, SshTarget]) -> None:
        """Run a server for each of ``wanted`` (by instance), stop the rest."""
        if not self.available or not self.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._sync(wanted), self.loop)
        with contextlib.suppress(Exception):
            future.result(timeout=30)

    def port(self, instance: str) -> int | None:
        running = self.servers.get(instance.lower())
        return running.port if running else None

    def sessions(self, instance: str) -> int:
        running = self.servers.get(instance.lower())
        return len(running.sessions) if running else 0

    def stop(self) -> None:
        if self.is_alive():
            future = asyncio.run_coroutine_threadsafe(self._sync({}), self.loop)
            with contextlib.suppress(Exception):
                future.result(timeout=15)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.join(timeout=10)

    # --- on the loop ---------------------------------------------------------------------
    async def _sync(self, wanted: dict[str, SshTarget]) -> None:
        for name in [n for n in self.servers if wanted.get(n) != self.servers[n].target]:
            running = self.servers.pop(name)
            running.server.close()
            for conn in list(running.sessions):
                with contextlib.suppress(Exception):
                    conn.close()
            log.info("instance %s: SSH server on port %s stopped", name, running.port)
        for name, target in wanted.items():
            if name not in self.servers:
                try:
                    self.servers[name] = await self._serve(target)
                except Exception:  # one instance's trouble must not stop the others'
                    log.exception("instance %s: SSH server could not start", name)

    async def _serve(self, target: SshTarget) -> _Running:
        import asyncssh

        folder = self.root / target.instance
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        record = folder / "ssh.json"
        port = 0
        with contextlib.suppress(OSError, ValueError, KeyError):
            port = int(json.loads(record.read_text())["port"])
        keys = asyncssh.import_authorized_keys(target.key)
        running = _Running(target, None, 0)

        server_class = _server_class()

        def factory() -> Any:
            return server_class(target, keys, running)

        async def start(at: int) -> Any:
            return await asyncssh.create_server(
                factory, self.host, at, server_host_keys=[self._host_key()],
                process_factory=lambda process: _session(process, target, self.confine),
                allow_scp=False, keepalive_interval=30, encoding=None,
            )  # fmt: skip

        try:
            server = await start(port)
        except OSError:  # its old port is taken now: another
            server = await start(0)
        running.server = server
        running.port = server.sockets[0].getsockname()[1]
        record.write_text(json.dumps({"port": running.port}))
        log.info("instance %s: SSH server on %s:%s", target.instance, self.host, running.port)
        return running

    def _host_key(self) -> Any:
        import asyncssh

        path = self.root / "ssh_host_ed25519_key"
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            key = asyncssh.generate_private_key("ssh-ed25519")
            key.write_private_key(str(path))
            os.chmod(path, 0o600)
        return asyncssh.read_private_key(str(path))


def _server_class() -> Any:
    """asyncssh's server base is imported only once SSH is used (an optional extra)."""
    import asyncssh

    class Server(asyncssh.SSHServer):
        """One connection's rules: the key, the user name, loopback-only forwarding."""

        def __init__(self, target: SshTarget, keys: Any, running: _Running) -> None:
            self.target, self.keys, self.running = target, keys, running
            self.conn: Any = None

        def connection_made(self, conn: Any) -> None:
            self.conn = conn
            self.running.sessions.add(conn)

        def connection_lost(self, exc: Exception | None) -> None:
            self.running.sessions.discard(self.conn)

        def begin_auth(self, username: str) -> bool:
            return True  # always ask for a key

        def public_key_auth_supported(self) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return False

        def kbdint_auth_supported(self) -> bool:
            return False

        def validate_public_key(self, username: str, key: Any) -> bool:
            if username not in (SSH_USER, self.target.user):
                return False
            return self.keys.validate(key, "", "") is not None  # {} (no options) lets in

        def connection_requested(self, dest_host: str, dest_port: int, orig_host: str,
                                 orig_port: int) -> bool:  # fmt: skip
            return dest_host in LOOPBACK  # Remote-SSH's tunnels; nothing off this machine

        def server_requested(self, listen_host: str, listen_port: int) -> bool:
            return False  # no remote listening (-R): the instance opens no ports for others

    return Server


async def _session(process: Any, target: SshTarget, confine: Any = None) -> None:
    """The command (or a login shell) in the user's folder, on a terminal when asked."""
    secret = ("LAPIS_TOKEN", "MLFLOW_TRACKING_TOKEN")  # the server's own, never a session's
    env = {k: v for k, v in os.environ.items() if k not in secret}
    env.update(HOME=str(target.folder), USER=target.user, SHELL="/bin/bash",
               LAPIS_COMPUTE_INSTANCE=target.instance)  # fmt: skip
    shell = shutil.which("bash") or "/bin/sh"
    argv = [shell, "-c", process.command] if process.command else [shell, "-l"]
    cpus = list(target.cpus)
    if process.get_terminal_type():
        env["TERM"] = process.get_terminal_type()
        code = await _on_terminal(process, argv, target, env, cpus, confine)
    else:
        box = confine.box(target.folder) if confine else None
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, cwd=target.folder, env=env,
                start_new_session=True, preexec_fn=box.enter if box else None,
            )  # fmt: skip
        finally:
            if box is not None:
                box.close()
        _pin(proc.pid, cpus)
        code = await _pump(process, proc)
    process.exit(code if code >= 0 else 128 - code)


async def _pump(process: Any, proc: Any) -> int:
    """The session's bytes to the command and back until it exits. By hand, not
    ``redirect``: a command that exits without reading its input (``cat file``) must not
    take the connection down with a broken pipe."""

    async def copy_out(source: Any, sink: Any) -> None:
        while data := await source.read(65536):
            sink.write(data)

    async def copy_in() -> None:
        with contextlib.suppress(Exception):  # the command stopped reading: drop the rest
            while data := await process.stdin.read(65536):
                proc.stdin.write(data)
                await proc.stdin.drain()
            proc.stdin.close()

    feeding = asyncio.ensure_future(copy_in())
    await asyncio.gather(copy_out(proc.stdout, process.stdout),
                         copy_out(proc.stderr, process.stderr))  # fmt: skip
    code = int(await proc.wait())
    feeding.cancel()
    with contextlib.suppress(Exception):
        await process.stdout.drain()
    return code


async def _on_terminal(process: Any, argv: list[str], target: SshTarget, env: dict[str, str],
                       cpus: list[int], confine: Any = None) -> int:  # fmt: skip
    """The shell on a pseudo-terminal, its bytes pumped both ways until it exits."""
    master, slave = pty.openpty()
    width, height, _, _ = process.get_terminal_size()
    if width and height:
        with contextlib.suppress(OSError):
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
    box = confine.box(target.folder) if confine else None
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=slave, stdout=slave, stderr=slave, cwd=target.folder, env=env,
            start_new_session=True, preexec_fn=box.enter if box else None,
        )  # fmt: skip
    finally:
        if box is not None:
            box.close()
    os.close(slave)
    _pin(proc.pid, cpus)
    loop = asyncio.get_running_loop()

    async def from_terminal() -> None:
        while True:
            try:
                data = await loop.run_in_executor(None, os.read, master, 65536)
            except OSError:  # EIO: the shell's side is closed
                return
            if not data:
                return
            process.stdout.write(data)

    async def to_terminal() -> None:
        with contextlib.suppress(Exception):
            while data := await process.stdin.read(65536):
                os.write(master, data)

    reading = asyncio.ensure_future(from_terminal())
    writing = asyncio.ensure_future(to_terminal())
    code = await proc.wait()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(reading, 2)  # the last output; a left-behind child may hold it
    writing.cancel()
    reading.cancel()
    os.close(master)
    return code


def _pin(pid: int, cpus: list[int]) -> None:
    if cpus and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, cpus)


def _asyncssh_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("asyncssh") is not None


def _serve_one(order: dict[str, Any]) -> None:
    """``python -m lapis.notebooks.ssh ORDER``: one SSH server, for a job's ``ssh``
    service (lapis/compute/job_services.py), until the job's supervisor ends it."""
    root = Path(order["root"])
    root.mkdir(parents=True, exist_ok=True)
    (root / "ssh.json").write_text(json.dumps({"port": int(order["port"])}))
    gateway = SshGateway(root.parent, str(order.get("host") or "127.0.0.1"))
    target = SshTarget(root.name, str(order["user"]), str(order["keys"]), Path(order["folder"]))

    async def serve() -> None:
        await gateway._serve(target)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    import sys

    _serve_one(json.loads(sys.argv[1]))
