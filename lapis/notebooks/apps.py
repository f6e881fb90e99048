"""An instance's ``custom_applications``: commands serving HTTP (TensorBoard, RStudio
Server, a dashboard) that the server proxies at ``/compute/<name>/apps/<app>/`` for the
instance's user, as it does JupyterLab.

Each runs while the instance is Running: in the user's folder of the file share, pinned
to the instance's cores, its ``{port}`` a free loopback port and ``{base_url}`` the path
it is served under; restarted with back-off when it exits, its output in
``<home>/notebooks/<instance>/app-<name>.log``. The lab manager's pass (lab.py) calls
``sync`` with what should run.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lapis.notebooks.confine import Confinement, spawn
from lapis.util.processes import backoff, stop_trees, tied_to_this_process


def app_prefix(instance: str, app: str) -> str:
    return f"/compute/{instance.lower()}/apps/{app}/"


@dataclass(frozen=True)
class AppTarget:
    instance: str
    app: str
    command: str
    folder: Path
    cpus: tuple[int, ...] = ()


@dataclass
class _App:
    target: AppTarget
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    ready: bool = False
    streak: int = 0
    retry_at: float = 0.0
    failed: str | None = None


class CustomApps:
    def __init__(self, root: Path, confine: Confinement | None = None) -> None:
        self.root = root
        self.confine = confine
        self.apps: dict[tuple[str, str], _App] = {}

    def sync(self, wanted: dict[tuple[str, str], AppTarget]) -> None:
        for key in [k for k in self.apps if self.apps[k].target != wanted.get(k)]:
            self._end(self.apps.pop(key))
        for key, target in wanted.items():
            app = self.apps.setdefault(key, _App(target))
            self._keep(app)

    def upstream(self, instance: str, app: str) -> int | None:
        found = self.apps.get((instance.lower(), app))
        return found.port if found is not None and found.ready else None

    def status(self, instance: str, app: str) -> str:
        found = self.apps.get((instance.lower(), app))
        if found is None:
            return "Stopped"
        if found.ready:
            return "Running"
        return f"Failed: {found.failed}" if found.failed else "Starting"

    def stop(self) -> None:
        for app in self.apps.values():
            self._end(app)
        self.apps.clear()

    def _keep(self, app: _App) -> None:
        if app.proc is not None and app.proc.poll() is not None:
            app.streak += 1
            app.failed = f"exited with code {app.proc.returncode}; see its log"
            app.proc, app.ready = None, False
            app.retry_at = time.monotonic() + backoff(app.streak)
        if app.proc is None:
            if time.monotonic() >= app.retry_at:
                self._start(app)
            return
        if not app.ready:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", app.port), 0.5),
            ):
                app.ready, app.failed, app.streak = True, None, 0

    def _start(self, app: _App) -> None:
        t = app.target
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            app.port = int(s.getsockname()[1])
        command = t.command.replace("{port}", str(app.port))
        command = command.replace("{base_url}", app_prefix(t.instance, t.app).rstrip("/"))
        folder = self.root / t.instance
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        env = {
            k: v for k, v in os.environ.items() if k not in ("LAPIS_TOKEN", "MLFLOW_TRACKING_TOKEN")
        }
        env.update(HOME=str(t.folder), LAPIS_COMPUTE_INSTANCE=t.instance)
        with open(folder / f"app-{t.app}.log", "ab") as log:
            try:
                app.proc = spawn(
                    self.confine, (t.folder, folder),
                    tied_to_this_process(["/bin/bash", "-c", command]), cwd=t.folder, env=env,
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )  # fmt: skip
            except OSError as exc:
                app.failed = str(exc)
                app.retry_at = time.monotonic() + backoff(app.streak + 1)
                return
        if t.cpus and hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(app.proc.pid, list(t.cpus))
        app.ready = False

    @staticmethod
    def _end(app: _App) -> None:
        if app.proc is not None:
            stop_trees([app.proc.pid])
            app.proc = None


def wanted_apps(computes: Any, user_root: Any) -> dict[tuple[str, str], AppTarget]:
    """What should run: every Running instance's custom applications."""
    out = {}
    for name, c in computes.items():
        for item in c.properties.get("custom_applications") or []:
            folder = user_root(str(c.user))
            target = AppTarget(name, item["name"], item["command"], folder, tuple(c.cpu_set))
            out[(name, item["name"])] = target
    return out
