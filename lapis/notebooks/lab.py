"""JupyterLab on every running compute instance, kept by one thread.

While an instance is Running, a real ``jupyterlab`` server runs for it: on loopback (a port
of its own choosing, read back from the runtime file Jupyter writes), under the base URL
``/compute/<name>/lab/`` that the server proxies (lapis/notebooks/proxy.py), with a random
token only the proxy knows, working in its user's folder of the workspace file share —
so a notebook saved on one instance is there on every other. Its kernels and terminals
are its children: pinned to the instance's cores as jobs are, and ended with it.

The manager (``LabManager``, a thread started with the server) reconciles once a second,
and at once when woken:
- an instance that is Running and has a user gets a lab; one that is not loses it
  (stopping an instance stops its kernels);
- a lab that exits is restarted with the same back-off as deployment instances, its log
  (``<home>/notebooks/<instance>/lab.log``) saying why;
- a lab is ready once its API answers; until then the proxy says it is starting;
- every few seconds a ready lab is asked for its kernels and terminals: a busy kernel
  keeps the instance awake, and the latest kernel or terminal activity (or a request
  through the proxy) moves the instance's idle clock — Azure's rule for idle shutdown.

Each lab's pid and start time are recorded (``lab.json``): a server that restarts ends a
lab the last one left before starting its own, so none is orphaned.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lapis.compute.service import ComputeService
from lapis.entities.compute import Compute, ComputeState, ComputeType
from lapis.notebooks.apps import CustomApps, app_prefix, wanted_apps
from lapis.notebooks.confine import Confinement, spawn
from lapis.notebooks.fileshare import FileShare
from lapis.notebooks.ssh import SSH_USER, SshGateway, SshTarget
from lapis.util import now_ms
from lapis.util.processes import (
    backoff,
    end_leftover,
    stop_trees,
    tied_to_this_process,
)

log = logging.getLogger("lapis.notebooks")
TICK = 1.0
POLL_ACTIVITY = 5.0  # seconds between asking a lab for its kernels and terminals
MARKER = "jupyterlab"
ANNOUNCEMENTS = "@jupyterlab/apputils-extension:announcements"


def lab_prefix(instance: str) -> str:
    return f"/compute/{instance.lower()}/lab/"


@dataclass
class Lab:
    """One instance's JupyterLab as the manager keeps it."""

    instance: str  # lower-cased
    user: str
    folder: Path  # its working folder in the file share
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    proc: subprocess.Popen[bytes] | None = None
    started_ms: int = 0
    port: int | None = None
    ready: bool = False
    streak: int = 0  # exits in a row
    retry_at: float = 0.0
    failed: str | None = None  # why it is not running, when it is not
    busy: list[str] = field(default_factory=list)  # what keeps the instance awake
    last_activity: int = 0  # epoch ms of the latest kernel, terminal or proxy activity
    polled_at: float = 0.0


class LabManager(threading.Thread):
    def __init__(
        self,
        compute: ComputeService,
        files: FileShare,
        home: Path,
        host: str = "127.0.0.1",
        confine: Confinement | None = None,
        enabled: bool = True,
    ) -> None:
        super().__init__(name="lapis-labs", daemon=True)
        self.compute = compute
        self.files = files
        self.root = home / "notebooks"
        self.confine = confine  # the sandbox of kernels, terminals, sessions (confine.py)
        self.ssh = SshGateway(self.root, host, confine)
        self.apps = CustomApps(self.root, confine)
        self.ssh_host = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
        self.labs: dict[str, Lab] = {}
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self.available = enabled and _jupyterlab_installed()
        self.switched_off = not enabled

    # --- what the proxy and the compute lifecycle ask ----------------------------------
    def upstream(self, instance: str) -> tuple[int, str] | None:
        """``(port, token)`` of the instance's ready lab, or None."""
        with self._lock:
            lab = self.labs.get(instance.lower())
            if lab is None or not lab.ready or lab.port is None:
                return None
            return lab.port, lab.token

    def status(self, instance: str) -> str:
        """``Running``, ``Starting``, ``Failed: <why>`` or ``Stopped`` — the studio's and
        ``compute show``'s Applications column."""
        if self.switched_off:
            return "Unavailable: JupyterLab is switched off on this server (LAPIS_JUPYTERLAB=off)"
        if not self.available:
            return "Unavailable: JupyterLab is not installed (pip install 'lapis[notebooks]')"
        with self._lock:
            lab = self.labs.get(instance.lower())
            if lab is None:
                return "Stopped"
            if lab.ready:
                return "Running"
            return f"Failed: {lab.failed}" if lab.failed else "Starting"

    def applications(self, c: Compute) -> list[dict[str, Any]]:
        """An instance's tools for ``compute show`` and the studio: JupyterLab and its
        terminals, at the proxied address."""
        running = c.state == ComputeState.RUNNING.value
        status = self.status(c.name) if running or not self.available else "Stopped"
        lab = lab_prefix(c.name)
        apps: list[dict[str, Any]] = [
            {"name": "JupyterLab", "status": status, "url": f"{lab}lab"},
            {"name": "Terminal", "status": status, "url": f"{lab}lab?path=terminals"},
        ]
        for item in c.properties.get("custom_applications") or []:
            with self._lock:
                state = self.apps.status(c.name, item["name"])
            apps.append({"name": item["name"], "status": state,
                         "url": app_prefix(c.name, item["name"])})  # fmt: skip
        if c.ssh_enabled:
            port = self.ssh.port(c.name)
            if not self.ssh.available:
                ssh = {"status": "Unavailable: asyncssh is not installed "
                                 "(pip install 'lapis[notebooks]')"}  # fmt: skip
            elif port is None:
                running = c.state == ComputeState.RUNNING.value
                ssh = {"status": "Starting" if running else "Stopped"}
            else:
                ssh = {"status": "Running",
                       "command": f"ssh -p {port} {SSH_USER}@{self.ssh_host}"}  # fmt: skip
            apps.append({"name": "SSH", **ssh})
        return apps

    def touched(self, instance: str) -> None:
        """The proxy carried a user's request or message: that is activity."""
        with self._lock:
            lab = self.labs.get(instance.lower())
            if lab is not None:
                lab.last_activity = now_ms()

    def activity(self, c: Compute) -> tuple[list[str], int]:
        """What keeps ``c`` awake now, and when it was last active (epoch ms, 0: never)."""
        sessions = self.ssh.sessions(c.name)
        ssh = [f"{sessions} SSH session{'s' if sessions > 1 else ''} open"] if sessions else []
        with self._lock:
            lab = self.labs.get(c.name.lower())
            if lab is None:
                return ssh, 0
            return [*lab.busy, *ssh], lab.last_activity

    def wake(self) -> None:
        self._wake.set()

    # --- the thread ----------------------------------------------------------------------
    def run(self) -> None:
        self._end_leftovers()
        if self.ssh.available:
            self.ssh.start()
        while not self._stopping.is_set():
            try:
                self.reconcile()
            except Exception:  # one bad pass must not end the manager
                log.exception("reconciling JupyterLab servers failed")
            self._wake.wait(TICK)
            self._wake.clear()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self.join(timeout=15)
        with self._lock:
            labs = list(self.labs.values())
            self.labs.clear()
        stop_trees([lab.proc.pid for lab in labs if lab.proc is not None])
        for lab in labs:
            self._forget(lab)
        self.ssh.stop()
        with self._lock:
            self.apps.stop()

    def reconcile(self) -> None:
        wanted = {
            c.name.lower(): c
            for c in self.compute.list()
            if c.type == ComputeType.INSTANCE.value
            and c.state == ComputeState.RUNNING.value
            and c.user
        }
        self.ssh.sync({
            name: SshTarget(name, str(c.user), str(c.properties["ssh_key"]),
                            self.files.user_root(str(c.user)), tuple(c.cpu_set))
            for name, c in wanted.items() if c.ssh_enabled and c.properties.get("ssh_key")
        })  # fmt: skip
        with self._lock:
            self.apps.sync(wanted_apps(wanted, self.files.user_root))
        if not self.available:
            return
        with self._lock:
            for name in [n for n in self.labs if n not in wanted]:
                self._end(self.labs.pop(name), "the instance is not running")
            for name, c in wanted.items():
                lab = self.labs.get(name)
                if lab is not None and lab.user.lower() != str(c.user).lower():
                    self._end(self.labs.pop(name), f"assigned to {c.user} now")
                    lab = None
                if lab is None:
                    lab = self.labs[name] = Lab(
                        name, str(c.user), self.files.user_root(str(c.user))
                    )
                self._keep(lab, c)

    # --- one lab -------------------------------------------------------------------------
    def _keep(self, lab: Lab, c: Compute) -> None:
        if lab.proc is not None and lab.proc.poll() is not None:
            code = lab.proc.returncode
            lab.streak += 1
            lab.failed = f"JupyterLab exited (code {code}); see {self._dir(lab) / 'lab.log'}"
            wait = backoff(lab.streak)
            self._log(lab, f"JupyterLab exited (code {code}); restarting in {wait:.0f} s, "
                           f"restart #{lab.streak}")  # fmt: skip
            lab.proc, lab.port, lab.ready = None, None, False
            lab.retry_at = time.monotonic() + wait
            self._forget(lab)
        if lab.proc is None:
            if time.monotonic() >= lab.retry_at:
                self._start(lab, c)
            return
        if not lab.ready:
            self._check_ready(lab)
        elif time.monotonic() - lab.polled_at >= POLL_ACTIVITY:
            self._poll_activity(lab)

    def _dir(self, lab: Lab) -> Path:
        return self.root / lab.instance

    def _start(self, lab: Lab, c: Compute) -> None:
        folder = self._dir(lab)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        labconfig = folder / "config" / "labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)
        (labconfig / "page_config.json").write_text(  # no network here: no news pop-up
            json.dumps({"disabledExtensions": {ANNOUNCEMENTS: True}})
        )
        runtime = folder / "runtime"
        for old in runtime.glob("jpserver-*.json"):
            old.unlink(missing_ok=True)
        argv = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", "--port=0",
            "--ServerApp.port_retries=0",
            f"--ServerApp.base_url={lab_prefix(lab.instance)}",
            f"--ServerApp.root_dir={lab.folder}",
            "--ServerApp.allow_remote_access=True",  # only the proxy reaches it, on loopback
            "--ServerApp.trust_xheaders=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=None",
            "--ContentsManager.allow_hidden=False",
        ]  # fmt: skip
        if os.geteuid() == 0:
            argv.append("--allow-root")
        env = {
            **os.environ,
            "JUPYTER_TOKEN": lab.token,  # never on the command line, where ps shows it
            "JUPYTER_CONFIG_DIR": str(folder / "config"),
            "JUPYTER_DATA_DIR": str(folder / "data"),
            "JUPYTER_RUNTIME_DIR": str(runtime),
            "IPYTHONDIR": str(folder / "ipython"),
            "JUPYTER_PATH": str(self.root / "jupyter"),  # kernels from register-kernel
            "HOME": str(lab.folder),  # terminals and kernels start in the user's folder
            "LAPIS_COMPUTE_INSTANCE": c.name,
            "SHELL": "/bin/bash",
        }
        for key in ("LAPIS_TOKEN", "MLFLOW_TRACKING_TOKEN"):  # the server's own secrets
            env.pop(key, None)
        out = open(folder / "lab.log", "ab")  # noqa: SIM115 - the child keeps it
        try:
            lab.proc = spawn(
                self.confine, (lab.folder, folder), tied_to_this_process(argv), cwd=lab.folder,
                env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            lab.failed = f"JupyterLab could not start: {exc}"
            lab.retry_at = time.monotonic() + backoff(lab.streak + 1)
            return
        finally:
            out.close()
        if c.cpu_set and hasattr(os, "sched_setaffinity"):  # kernels and terminals inherit it
            with contextlib.suppress(OSError):
                os.sched_setaffinity(lab.proc.pid, list(c.cpu_set))
        lab.started_ms, lab.port, lab.ready, lab.failed = now_ms(), None, False, None
        lab.last_activity = max(lab.last_activity, now_ms())
        (folder / "lab.json").write_text(
            json.dumps({"pid": lab.proc.pid, "start": lab.started_ms, "user": lab.user})
        )
        self._log(lab, f"JupyterLab starting for {lab.user} in {lab.folder}")

    def _check_ready(self, lab: Lab) -> None:
        if lab.port is None:
            lab.port = _runtime_port(self._dir(lab) / "runtime")
            if lab.port is None:
                return
        if self._get(lab, "api/status", timeout=2) is not None:
            lab.ready, lab.streak = True, 0
            self._log(lab, f"JupyterLab ready on 127.0.0.1:{lab.port}")

    def _poll_activity(self, lab: Lab) -> None:
        lab.polled_at = time.monotonic()
        kernels = self._get(lab, "api/kernels") or []
        terminals = self._get(lab, "api/terminals") or []
        busy = [f"kernel {k.get('name', '?')} busy" for k in kernels
                if k.get("execution_state") == "busy"]  # fmt: skip
        latest = lab.last_activity
        for item in [*kernels, *terminals]:
            latest = max(latest, _epoch_ms(item.get("last_activity")))
        lab.busy, lab.last_activity = busy, latest

    def _get(self, lab: Lab, path: str, timeout: float = 5) -> Any:
        url = f"http://127.0.0.1:{lab.port}{lab_prefix(lab.instance)}{path}"
        req = urllib.request.Request(url, headers={"Authorization": f"token {lab.token}"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"null")
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def _end(self, lab: Lab, why: str) -> None:
        if lab.proc is not None:
            self._log(lab, f"JupyterLab stopping: {why}")
            stop_trees([lab.proc.pid])
        self._forget(lab)

    def _forget(self, lab: Lab) -> None:
        with contextlib.suppress(OSError):
            (self._dir(lab) / "lab.json").unlink()

    def _end_leftovers(self) -> None:
        """Labs a server that died left running: end them before starting ours."""
        if not self.root.is_dir():
            return
        for record in self.root.glob("*/lab.json"):
            try:
                info = json.loads(record.read_text())
                if end_leftover(int(info["pid"]), info.get("start"), MARKER):
                    log.info("ended the JupyterLab a previous server left (%s)", record.parent)
            except (OSError, ValueError, KeyError, TypeError):
                pass
            record.unlink(missing_ok=True)

    def _log(self, lab: Lab, line: str) -> None:
        with contextlib.suppress(OSError):
            folder = self._dir(lab)
            folder.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            with open(folder / "lab.log", "a") as fh:
                fh.write(f"[lapis {stamp}Z] {line}\n")
        log.info("instance %s: %s", lab.instance, line)


def _jupyterlab_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("jupyterlab") is not None


def _runtime_port(runtime: Path) -> int | None:
    """The port Jupyter chose (``--port=0``), from the ``jpserver-<pid>.json`` it writes."""
    for info in runtime.glob("jpserver-*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return int(json.loads(info.read_text())["port"])
    return None


def _epoch_ms(stamp: Any) -> int:
    """Jupyter's ISO 8601 UTC times (``2026-12-07T06:50:08.123456Z``) in epoch ms."""
    if not isinstance(stamp, str):
        return 0
    from datetime import datetime

    with contextlib.suppress(ValueError):
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)
    return 0
