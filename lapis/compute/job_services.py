"""A job's ``services:`` started by its supervisor beside the command, ended with it.

Each runs in the job's sandbox (the same Landlock rules as the command), in its working
folder, and says where it listens in ``<job>/services/<name>.json`` — which the server's
proxy reads to reach it at ``/jobs/<job>/services/<name>/`` for the job's submitter only
(lapis/server/lab_proxy.py):
- ``jupyter_lab``: JupyterLab on loopback with a token of its own, its ``python3`` kernel
  the job environment's Python when that has ipykernel (else Lapis' own, which the job's
  page says); its port is in the runtime file Jupyter writes;
- ``tensor_board``: TensorBoard over ``log_dir`` when the environment (or this host) has
  it, under the proxied path prefix;
- ``ssh``: an SSH server letting in the keys the job file lists (lapis/notebooks/ssh.py);
- ``vs_code``: not a process here — VS Code connects through the job's ``ssh`` service.

Stdlib only at import: the supervisor starts in tens of milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any


def prefix(job: str, service: str) -> str:
    return f"/jobs/{job}/services/{service}/"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _say(folder: Path, name: str, **info: Any) -> None:
    path = folder / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)


def start(job_dir: Path, job: dict[str, Any], bin_dir: str, new_box: Any, env: dict[str, str]
          ) -> list[subprocess.Popen[bytes]]:  # fmt: skip
    """Start every service the job asks for, each in a sandbox ``new_box()`` makes (the
    command's rules); the processes, for the supervisor to end."""
    services: dict[str, dict[str, Any]] = job.get("services") or {}
    if not services:
        return []
    from lapis.compute import sandbox

    folder = job_dir / "services"
    folder.mkdir(exist_ok=True)
    wd = job_dir / "wd"
    started = []
    for name, spec in services.items():
        kind = spec.get("type")
        try:
            argv, extra, info = _plan(name, kind, spec, job, job_dir, bin_dir, folder)
        except _Unavailable as exc:
            _say(folder, name, type=kind, status=f"Unavailable: {exc}")
            continue
        log = open(folder / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        try:
            proc = sandbox.spawn(new_box(), argv, cwd=wd, env={**env, **extra},
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)  # fmt: skip
        except OSError as exc:
            _say(folder, name, type=kind, status=f"Failed: {exc}")
            continue
        finally:
            log.close()
        cpus = job.get("cpu_set") or []
        if cpus and hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(proc.pid, cpus)
        _say(folder, name, type=kind, status="Running", pid=proc.pid, **info)
        started.append(proc)
    return started


class _Unavailable(Exception):
    pass


def _plan(name: str, kind: str | None, spec: dict[str, Any], job: dict[str, Any],
          job_dir: Path, bin_dir: str, folder: Path
          ) -> tuple[list[str], dict[str, str], dict[str, Any]]:  # fmt: skip
    base = prefix(str(job["name"]), name)
    if kind == "jupyter_lab":
        import importlib.util

        if importlib.util.find_spec("jupyterlab") is None:
            raise _Unavailable("JupyterLab is not installed on this host (lapis[notebooks])")
        own = folder / name
        kernel_note = _kernel(own / "data", bin_dir)
        token = secrets.token_urlsafe(32)
        argv = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
                "--port=0", "--ServerApp.port_retries=0", f"--ServerApp.base_url={base}",
                f"--ServerApp.root_dir={job_dir / 'wd'}", "--ServerApp.allow_remote_access=True",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]  # fmt: skip
        if os.geteuid() == 0:
            argv.append("--allow-root")
        extra = {"JUPYTER_TOKEN": token, "JUPYTER_CONFIG_DIR": str(own / "config"),
                 "JUPYTER_DATA_DIR": str(own / "data"),
                 "JUPYTER_RUNTIME_DIR": str(own / "runtime"), "IPYTHONDIR": str(own / "ipython"),
                 "HOME": str(job_dir / "wd")}  # fmt: skip
        return argv, extra, {"runtime": str(own / "runtime"), "note": kernel_note}
    if kind == "tensor_board":
        here = Path(sys.executable).with_name("tensorboard")  # Lapis' own, when it has one
        board = shutil.which("tensorboard", path=bin_dir) or (str(here) if here.exists() else None)
        if board is None:
            raise _Unavailable("TensorBoard is not installed in the job's environment "
                               "(add tensorboard to its conda file)")  # fmt: skip
        port = _free_port()
        logdir = job_dir / "wd" / str(spec.get("log_dir") or "outputs/tblogs")
        logdir.mkdir(parents=True, exist_ok=True)
        argv = [board, "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port),
                "--path_prefix", base.rstrip("/")]  # fmt: skip
        return argv, {}, {"port": port}
    if kind == "ssh":
        import importlib.util

        if importlib.util.find_spec("asyncssh") is None:
            raise _Unavailable("asyncssh is not installed on this host (lapis[notebooks])")
        port = _free_port()
        order = {"port": port, "keys": spec.get("ssh_public_keys", ""), "folder":
                 str(job_dir / "wd"), "root": str(folder / name), "user": str(job.get("user")
                 or "azureuser"), "host": "127.0.0.1"}  # fmt: skip
        argv = [sys.executable, "-m", "lapis.notebooks.ssh", json.dumps(order)]
        return argv, {}, {"port": port, "command": f"ssh -p {port} azureuser@{{host}}"}
    if kind == "vs_code":
        raise _Unavailable("VS Code connects through an ssh service: add one with your "
                           "public key, then use Remote-SSH with its command")  # fmt: skip
    raise _Unavailable(f"unknown service type {kind}")


def _kernel(data_dir: Path, bin_dir: str) -> str | None:
    """A ``python3`` kernelspec running the job environment's Python, when it can."""
    python = Path(bin_dir) / "python"
    probe = subprocess.run([str(python), "-c", "import ipykernel"], capture_output=True)
    if probe.returncode != 0:
        return "the job's environment has no ipykernel: notebooks run in Lapis' own Python"
    spec = data_dir / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (the job's environment)", "language": "python",
    }))  # fmt: skip
    return None


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    if procs:
        from lapis.util.processes import stop_trees

        stop_trees([p.pid for p in procs], grace=2)


def view(job_name: str, job_dir: Path, services: dict[str, dict[str, Any]], running: bool,
         host: str) -> list[dict[str, Any]]:  # fmt: skip
    """Each service as ``lapis job show`` and the studio list it: status, and where it
    is (a proxied URL, or the ssh command)."""
    out = []
    for name, spec in services.items():
        info: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            info = json.loads((job_dir / "services" / f"{name}.json").read_text())
        status = str(info.get("status") or ("Starting" if running else "NotStarted"))
        if not running and status == "Running":
            status = "Stopped"
        entry: dict[str, Any] = {"name": name, "type": spec.get("type"), "status": status}
        entry.update(url=None, command=None, note=info.get("note"))
        if status == "Running" and spec.get("type") in ("jupyter_lab", "tensor_board"):
            entry["url"] = prefix(job_name, name) + ("lab" if spec["type"] == "jupyter_lab" else "")
        if status == "Running" and info.get("command"):
            entry["command"] = str(info["command"]).replace("{host}", host)
        out.append(entry)
    return out


def upstream(job_dir: Path, name: str) -> tuple[int, str | None] | None:
    """Where a running HTTP service listens: ``(port, JupyterLab's token or None)``."""
    try:
        info = json.loads((job_dir / "services" / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None
    if info.get("status") != "Running":
        return None
    if info.get("type") == "jupyter_lab":
        for runtime in Path(str(info.get("runtime"))).glob("jpserver-*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                data = json.loads(runtime.read_text())
                return int(data["port"]), str(data["token"])
        return None
    if info.get("type") == "tensor_board" and info.get("port"):
        return int(info["port"]), None
    return None
