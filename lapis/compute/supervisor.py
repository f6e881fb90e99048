"""The supervisor: one small detached process per running job.

The server starts it (``python -m lapis.compute.supervisor JOB_DIR``) in a new
session and forgets about it; from then on the job no longer depends on the
server being alive. The supervisor builds the environment if needed, starts
the user's command in its own process group (pinned to the compute's cores),
enforces cancel, ``limits.timeout`` and the memory limit by ending the whole
process tree, and exits when the command does.

It talks to the server only through files in the job folder, so a server
that is down, restarting or busy never blocks it:

- ``events.jsonl`` (supervisor → server): one JSON line per step
  (``Preparing``, ``Starting``, ``Running``, ``Exited``), each with its time;
  appended and fsync'd, so a server that comes back replays them;
- ``heartbeat`` (supervisor → server): touched every second; a stale one is
  what the server calls ``NotResponding``;
- ``cancel`` (server → supervisor): its existence asks for the tree to end.

The job's output goes straight from the child to ``user_logs/std_log.txt``
(no pipe through this process), so the log survives whatever happens here.
It imports nothing heavy: it starts in tens of milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

EVENTS = "events.jsonl"
HEARTBEAT = "heartbeat"
CANCEL = "cancel"
JOB_FILE = "job.json"
STD_LOG = "user_logs/std_log.txt"
BUILD_LOG = "system_logs/environment_build.txt"
NODE_FILE = "node"  # the cluster node this supervisor runs on (its index), when on one
HEARTBEAT_SECONDS = 1.0
KILL_GRACE_SECONDS = 3.0


def emit(job_dir: Path, status: str, **data: Any) -> None:
    """Append one event; durable before the next step starts."""
    line = json.dumps({"status": status, "time": int(time.time() * 1000), **data})
    fd = os.open(job_dir / EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_events(job_dir: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Whole events written after ``offset`` and the offset after them (a torn tail waits)."""
    try:
        with open(job_dir / EVENTS, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    events = []
    for raw in data[: end + 1].splitlines():
        try:
            events.append(json.loads(raw))
        except ValueError:
            continue
    return events, offset + end + 1


def kill_tree(pid: int, grace: float = KILL_GRACE_SECONDS) -> None:
    """End a process, its group and every descendant (lapis/util/processes.py)."""
    from lapis.util.processes import kill_tree as end_tree

    end_tree(pid, grace)


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        total = 0
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += p.memory_info().rss
        return total
    except psutil.NoSuchProcess:
        return 0


def _heartbeat(job_dir: Path, stop: threading.Event) -> None:
    beat = job_dir / HEARTBEAT
    while not stop.is_set():
        beat.touch()
        stop.wait(HEARTBEAT_SECONDS)


def _tail(path: Path, lines: int = 10) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - 8192))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _environment(job_dir: Path, job: dict[str, Any]) -> str | None:
    """The interpreter folder to put first on PATH; None after a failed build (event sent)."""
    env = job["environment"]
    if env["kind"] == "docker":
        return _image(job_dir, env)
    from lapis.environments.builder import EnvironmentBuilder

    if env["kind"] != "built":  # never Lapis' own interpreter: a thin layer over it
        try:
            layered = EnvironmentBuilder(Path(env["root"])).layered(env["python"])
        except Exception as exc:
            reason = f"environment build failed: layering over {env['python']}: {exc}"
            emit(job_dir, "Exited", code=None, outcome="Failed", reason=reason)
            return None
        return str(layered.python.parent)

    from lapis.specs.environment import EnvironmentSpec

    spec = EnvironmentSpec(
        python=env["spec"].get("python"),
        requirements=tuple(env["spec"].get("requirements") or ()),
        conda_only=tuple(env["spec"].get("conda") or ()),
    )
    builder = EnvironmentBuilder(Path(env["root"]))
    if not (builder.path_for(spec) / ".lapis-ready").exists():
        emit(
            job_dir, "Preparing", digest=spec.digest, reason=f"building environment {env['label']}"
        )
    log_path = job_dir / BUILD_LOG
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", buffering=1) as log:
        log.write(f"Environment {env['label']} ({spec.digest[:12]})\n")

        def write(line: str) -> None:
            log.write(line + "\n")

        try:
            built = builder.ensure(spec, log=write)
        except Exception as exc:  # the reason goes to the job, not to a traceback
            message = str(exc)
            log.write(f"\nBuild failed: {message}\n")
            emit(
                job_dir,
                "Exited",
                code=None,
                outcome="Failed",
                reason=f"environment build failed: {message}",
                digest=spec.digest,
            )
            return None
        how = "Reused cached" if built.cache_hit else "Built"
        log.write(f"{how} environment in {built.seconds:.2f} s\n")
    emit(job_dir, "Built", digest=spec.digest, cache_hit=built.cache_hit, seconds=built.seconds)
    return str(built.python.parent)


def _image(job_dir: Path, env: dict[str, Any]) -> str | None:
    """Build the job's image from its staged context (reused when already built)."""
    from lapis.compute import containers

    log_path = job_dir / BUILD_LOG
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if not containers.image_present(env["image"]):
        emit(job_dir, "Preparing", reason=f"building image {env['image']}")
    started = time.monotonic()
    with open(log_path, "a", buffering=1) as log:
        error = containers.build(
            job_dir / "build-context",
            env["dockerfile"],
            env["image"],
            lambda line: log.write(line + "\n"),
        )
    if error is not None:
        emit(job_dir, "Exited", code=None, outcome="Failed", reason=f"environment {error}")
        return None
    emit(job_dir, "Built", digest=env.get("context"), seconds=time.monotonic() - started)
    return "docker"


def _sandbox(job_dir: Path, job: dict[str, Any]) -> Any:
    """The job's Landlock rules, or None (switched off, or no Landlock: said in the log)."""
    spec = job.get("sandbox")
    if not spec:
        return None
    from lapis.compute import sandbox

    box = sandbox.prepare(
        spec.get("deny") or [], spec.get("allow") or [], spec.get("read_only") or []
    )
    if box is None:
        note = job_dir / "system_logs" / "sandbox.txt"
        note.parent.mkdir(parents=True, exist_ok=True)
        note.write_text(
            "This kernel has no Landlock: the job ran without the filesystem sandbox and "
            "could read the workspace's files.\n"
        )
    return box


def _downloads(job_dir: Path, job: dict[str, Any]) -> bool:
    """Fetch the job's http(s) inputs (lapis/compute/fetch.py); False after a failure,
    which ends the job with the reason."""
    wanted = job.get("downloads") or {}
    if not wanted:
        return True
    from lapis.compute.fetch import fetch

    note = job_dir / "system_logs" / "inputs.txt"
    note.parent.mkdir(parents=True, exist_ok=True)
    with open(note, "a") as log:
        for name, item in wanted.items():
            try:
                line = fetch(item["url"], Path(job["url_cache"]), Path(item["dest"]))
            except RuntimeError as exc:
                log.write(f"input {name}: {exc}\n")
                reason = f"input {name}: {exc}"
                emit(job_dir, "Exited", code=None, outcome="Failed", reason=reason)
                return False
            log.write(line + "\n")
    return True


def _data_inputs(job_dir: Path, job: dict[str, Any], in_place: bool) -> bool:
    """Read the job's by-reference inputs in their modes (lapis/compute/data_inputs.py);
    False after a failure, which ends the job with the reason. Read-only views are
    granted to the job's sandbox here (``in_place``: its Landlock rules will apply)."""
    if not job.get("data_inputs"):
        return True
    from lapis.compute import data_inputs, sandbox

    box = job.get("sandbox")
    sandboxed = bool(box) and in_place and sandbox.abi_version() > 0
    note = job_dir / "system_logs" / "inputs.txt"
    note.parent.mkdir(parents=True, exist_ok=True)
    try:
        lines, grants = data_inputs.materialize(
            job_dir, job, sandboxed, Path(job.get("data_cache") or job_dir / "cache")
        )
    except data_inputs.InputError as exc:
        with open(note, "a") as fh:
            fh.write(f"{exc}\n")
        emit(job_dir, "Exited", code=None, outcome="Failed", reason=str(exc))
        return False
    if grants and box:
        box["deny"] = [*(box.get("deny") or []), *grants]
        box["read_only"] = [*(box.get("read_only") or []), *grants]
    log_path = job_dir / STD_LOG
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(note, "a") as fh, open(log_path, "a") as std:
        for line in lines:
            fh.write(line + "\n")
            std.write(f"[lapis] {line}\n")
    return True


def supervise(job_dir: Path) -> int:
    import subprocess

    job = json.loads((job_dir / JOB_FILE).read_text())
    if os.environ.get("LAPIS_NODE_INDEX"):  # a cluster's worker node: say which
        (job_dir / NODE_FILE).write_text(os.environ["LAPIS_NODE_INDEX"])
    stop = threading.Event()
    threading.Thread(target=_heartbeat, args=(job_dir, stop), daemon=True).start()
    try:
        bin_dir = _environment(job_dir, job)
        if bin_dir is None:
            return 1
        if (job_dir / CANCEL).exists():
            emit(job_dir, "Exited", code=None, outcome="Canceled", reason="canceled before start")
            return 0
        if not _downloads(job_dir, job):
            return 1
        gang = bool(job.get("gang"))  # a distributed job: its driver says Starting and Running
        if not _data_inputs(job_dir, job, in_place=not gang and bin_dir != "docker"):
            return 1
        if not gang:
            emit(job_dir, "Starting")
        cpus = job.get("cpu_set") or []
        if cpus and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cpus)  # inherited by the command and all it starts
        env = {**os.environ, **job["env"]}
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(Path(bin_dir).parent)
        env.pop("PYTHONHOME", None)
        tmp = job_dir / "tmp"  # the job's own temporary folder (the sandbox allows it)
        tmp.mkdir(exist_ok=True)
        env["TMPDIR"] = env["TMP"] = env["TEMP"] = str(tmp)
        log_path = job_dir / STD_LOG
        log_path.parent.mkdir(parents=True, exist_ok=True)
        from lapis.compute import sandbox

        argv = ["/bin/bash", "-c", job["command"]]
        box = _sandbox(job_dir, job)
        if gang:  # lapis/compute/ray/gang.py: it sandboxes each rank on its node
            argv, box = [sys.executable, "-m", "lapis.compute.ray.gang", str(job_dir)], None
        elif bin_dir == "docker":  # the container is the job's sandbox; the client needs the socket
            from lapis.compute import containers

            passed = containers.passed_variables(job, job_dir)
            argv = containers.run_argv(job, job_dir, passed, job["command"])
            env = {**os.environ, **passed}
            box = None
        with open(log_path, "ab", buffering=0) as log:
            proc = sandbox.spawn(
                box,
                argv,
                cwd=job_dir / "wd",
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not gang:
            sandboxed = f"landlock v{box.abi}" if box else None
            emit(job_dir, "Running", pid=proc.pid, sandbox=sandboxed)
        services = []
        if job.get("services") and bin_dir != "docker":  # beside the command, in its box
            from lapis.compute import job_services

            # each its own box: spawn() closes a box's rules once its child has entered them
            services = job_services.start(job_dir, job, bin_dir,
                                          lambda: _sandbox(job_dir, job), env)  # fmt: skip
        try:
            return _watch(job_dir, job, proc)
        finally:
            if services:
                job_services.stop(services)
    finally:
        stop.set()
        inputs = sys.modules.get("lapis.compute.data_inputs")
        if inputs is not None:  # the job has ended: its FUSE input mounts go
            inputs.unmount_all()


def _exit_waiter(pid: int) -> int | None:
    """A pidfd that becomes readable when ``pid`` exits (Linux), so the end is seen at once."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _wait_exit(proc: Any, waiter: int | None, seconds: float) -> None:
    if waiter is None:
        time.sleep(seconds)
        return
    import select

    select.select([waiter], [], [], seconds)


def _watch(job_dir: Path, job: dict[str, Any], proc: Any) -> int:
    waiter = _exit_waiter(proc.pid)
    try:
        return _watch_loop(job_dir, job, proc, waiter)
    finally:
        if waiter is not None:
            os.close(waiter)


def _watch_loop(job_dir: Path, job: dict[str, Any], proc: Any, waiter: int | None) -> int:
    started = time.monotonic()
    timeout = job.get("timeout_seconds")
    memory_limit = job.get("memory_limit_bytes")
    last_memory_check = 0.0
    outcome: tuple[str, str] | None = None
    while proc.poll() is None:
        now = time.monotonic()
        if (job_dir / CANCEL).exists():
            outcome = ("Canceled", "canceled by request")
        elif timeout and now - started > timeout:
            outcome = ("Failed", f"exceeded limits.timeout of {timeout} s")
        elif memory_limit and now - last_memory_check > 0.5:
            last_memory_check = now
            used = _tree_rss(proc.pid)
            if used > memory_limit:
                outcome = (
                    "Failed",
                    f"used {used / 2**30:.2f} GiB, over the compute's memory limit of "
                    f"{memory_limit / 2**30:.2f} GiB",
                )
        if outcome is not None:
            kill_tree(proc.pid)
            proc.wait()
            break
        _wait_exit(proc, waiter, 0.05)
    code = proc.returncode
    if outcome is None:
        if code == 0:
            outcome = ("Completed", "exit code 0")
        elif (job_dir / "system_logs" / "gang.json").exists():  # which rank or node ended it
            said = json.loads((job_dir / "system_logs" / "gang.json").read_text())
            outcome = (str(said["outcome"]), str(said["reason"]))
        else:
            tail = _tail(job_dir / STD_LOG)
            outcome = (
                "Failed",
                f"exit code {code}" + (f"; last log lines:\n{tail}" if tail else ""),
            )
    kill_tree(proc.pid, grace=0.5)  # stragglers: background children of the command
    if job["environment"].get("kind") == "docker":
        from lapis.compute import containers

        containers.remove(job)  # the container, should the client have been killed first
    emit(job_dir, "Exited", code=code, outcome=outcome[0], reason=outcome[1])
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m lapis.compute.supervisor JOB_DIR\n")
        return 2
    job_dir = Path(args[0])
    try:
        return supervise(job_dir)
    except Exception as exc:  # last resort: the server must learn why, not wait forever
        emit(job_dir, "Exited", code=None, outcome="Failed", reason=f"supervisor error: {exc!r}")
        raise


if __name__ == "__main__":
    sys.exit(main())
