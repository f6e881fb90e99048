"""Compute instances: a named, pinned slice of this host (a VM size's cores and memory).

Jobs run exactly as on ``local`` (supervised processes), confined to the
instance's cores and memory by the supervisor. The node is this host, which
is already up: provisioning, starting and stopping hold nothing beyond the
state the lifecycle records (the slice is bookkeeping — queued jobs simply do
not start while it is stopped), and ``observe`` reports the one node as that
state says. Its JupyterLab and SSH (lapis/notebooks/) follow the state too.

**Setup scripts** (Azure's ``setup_scripts``) are what make creating and starting take
time here: a creation script runs once when the instance is made, a startup script at
every start (creation included, after the creation script). They run in the user's
folder of the file share with the instance's cores, bounded by their timeout, and the
instance stays Creating/Starting until they end — Running when they exit 0, Failed
with the exit code otherwise. Their output is the instance's setup log
(``lapis compute show --logs``). A script's process is recorded, so a server that
restarts meanwhile waits for it again instead of running it twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any, ClassVar

from lapis.compute.base import NodeState
from lapis.compute.local import ProcessBackend
from lapis.entities.compute import Compute, ComputeState, ComputeType
from lapis.entities.files import USERS, user_folder_name
from lapis.errors import LapisError
from lapis.util.processes import same_process, start_time_ms, stop_trees

SETUP_LOG = "setup.log"
_ROOTS: dict[str, Path] = {}


_DENY: list[str] = []


def configure(root: Path, fileshare: Path, deny: list[str] | None = None) -> None:
    """Where instances keep their setup scripts' state, the workspace file share (the
    scripts run in their user's folder), and what the scripts' sandbox keeps out of reach
    (None: no sandbox) — the home, but for that folder and their own."""
    _ROOTS["root"], _ROOTS["share"] = root, fileshare
    _DENY[:] = deny or []


def setup_log(name: str) -> Path | None:
    """The instance's setup log (its scripts' output), when it has one."""
    root = _ROOTS.get("root")
    path = root / name.lower() / SETUP_LOG if root else None
    return path if path is not None and path.is_file() else None


class InstanceBackend(ProcessBackend):
    type_name: ClassVar[str] = ComputeType.INSTANCE.value
    description: ClassVar[str] = "a pinned slice of this host: the size's cores and memory"
    limits_memory: ClassVar[bool] = True

    def _observe(self, compute: Compute) -> list[NodeState]:
        state = compute.state
        if state not in (ComputeState.STOPPED.value, ComputeState.FAILED.value):
            state = ComputeState.RUNNING.value  # a slice of a running host is up at once
        return [NodeState(f"{compute.name}-0", state, f"cores {list(compute.cpu_set)}")]

    # --- setup scripts ---------------------------------------------------------------------
    def _provision(self, compute: Compute) -> None:
        self._run_scripts(compute, ("creation_script", "startup_script"))

    def _start(self, compute: Compute) -> None:
        self._run_scripts(compute, ("startup_script",))

    def _stop(self, compute: Compute) -> None:
        self._end_scripts(compute)

    def _delete(self, compute: Compute) -> None:
        self._end_scripts(compute)

    def ready(self, compute: Compute) -> bool:
        """Up once its setup scripts (if any) have ended well; a failed one fails it."""
        record = self._record(compute)
        if record is None:
            return super().ready(compute)
        info = _read(record)
        pid = int(info.get("pid") or 0)
        if not pid:
            if time.time() - float(info.get("at") or 0) < 60:
                return False  # the scripts are being started
            raise LapisError(f"the {info.get('phase', 'setup')} never started (the server "
                             f"stopped while starting it); restart {compute.name}")  # fmt: skip
        child = self._children.get(pid)
        if child is not None:  # started by this server: ask it (and reap it)
            if child.poll() is None:
                return False
            self._children.pop(pid, None)
        elif pid and same_process(pid, info.get("start")):
            return False  # a previous server's, still running
        code = _read(record.with_name("setup.exit")).get("code")
        if code is None and info.get("pid"):  # ended without writing its code: killed
            code = -9
        if code not in (0, None):
            raise LapisError(
                f"the {info.get('phase', 'setup')} exited with code {code}; its output: "
                f"lapis compute show -n {compute.name} --logs"
            )
        return super().ready(compute)

    def _record(self, compute: Compute) -> Path | None:
        root = _ROOTS.get("root")
        if root is None or not compute.properties.get("setup_scripts"):
            return None
        path = root / compute.name.lower() / "setup.json"
        return path if path.exists() else None

    def _run_scripts(self, compute: Compute, kinds: tuple[str, ...]) -> None:
        scripts = compute.properties.get("setup_scripts") or {}
        chosen = [(k, scripts[k]) for k in kinds if k in scripts]
        root, share = _ROOTS.get("root"), _ROOTS.get("share")
        if not chosen or root is None or share is None:
            return
        folder = root / compute.name.lower()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        (folder / "setup.exit").unlink(missing_ok=True)
        home = share / USERS / user_folder_name(str(compute.user or "admin"))
        home.mkdir(parents=True, exist_ok=True)
        lines = ["set -o pipefail 2>/dev/null", f"cd {_quote(str(home))}"]
        for kind, script in chosen:
            run = script.get("command")
            if script.get("text") is not None:
                path = folder / f"{kind}.sh"
                path.write_text(script["text"])
                path.chmod(0o700)
                run = run or f"bash {_quote(str(path))} {script.get('arguments') or ''}"
            title = kind.replace("_", " ")
            seconds = int(script.get("timeout", 900))
            done = _quote(str(folder / "setup.exit"))
            lines += [
                f"echo {_quote(f'[lapis] {title}: {run}')}",
                f"timeout {seconds} bash -c {_quote(str(run))}",
                "code=$?",
                "if [ $code -ne 0 ]; then",
                f"  [ $code -eq 124 ] && echo '[lapis] {title} ran past its {seconds // 60} "
                "minute timeout'",
                f'  echo "[lapis] {title} exited with code $code"',
                f'  echo "{{\\"code\\": $code}}" > {done}',
                "  exit $code",
                "fi",
                f"echo '[lapis] {title} done'",
            ]
        lines.append(f"echo '{{\"code\": 0}}' > {_quote(str(folder / 'setup.exit'))}")
        env = {**os.environ, "HOME": str(home), "LAPIS_COMPUTE_INSTANCE": compute.name}
        for key in ("LAPIS_TOKEN", "MLFLOW_TRACKING_TOKEN"):
            env.pop(key, None)
        from lapis.compute import sandbox

        phase = " and ".join(k.replace("_", " ") for k, _ in chosen)
        record = folder / "setup.json"  # first: the lifecycle's tick may ask ready() now
        record.write_text(json.dumps({"pid": None, "phase": phase, "at": time.time()}))
        box = sandbox.prepare(_DENY, [str(home), str(folder)], []) if _DENY else None
        with open(folder / SETUP_LOG, "ab") as log:
            proc = sandbox.spawn(
                box, ["/bin/bash", "-c", "\n".join(lines)], cwd=home, env=env, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        if compute.cpu_set and hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(proc.pid, list(compute.cpu_set))
        self._children[proc.pid] = proc  # polled (and reaped) by ready()
        record.write_text(
            json.dumps({"pid": proc.pid, "start": start_time_ms(proc.pid), "phase": phase})
        )

    def _end_scripts(self, compute: Compute) -> None:
        root = _ROOTS.get("root")
        if root is None:
            return
        record = root / compute.name.lower() / "setup.json"
        info = _read(record)
        if info.get("pid") and same_process(int(info["pid"]), info.get("start")):
            stop_trees([int(info["pid"])])
        record.unlink(missing_ok=True)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
