"""The job folder: what a job sees when it starts, and what is kept when it ends.

``$LAPIS_HOME/jobs/<name>/`` holds

- ``wd/``            the working directory: a copy of the code snapshot, plus
                     ``outputs/`` and ``logs/`` (Azure's conventions);
- ``inputs/<name>/`` read-only copies of ``uri_file``/``uri_folder`` inputs;
- ``named-outputs/<name>/`` the folders ``${{outputs.<name>}}`` points at;
- ``user_logs/std_log.txt``, ``system_logs/`` and the supervisor's files;
- ``spool/``         metric batches the SDK kept while the server was away.

Inputs are copied, not linked, and made read-only, so a job can neither
change a user's data nor see it change under it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from lapis.artifacts.snapshot import check_digest
from lapis.artifacts.store import ArtifactStore
from lapis.compute import data_inputs as data_inputs_mod
from lapis.compute.supervisor import JOB_FILE
from lapis.entities.compute import Compute
from lapis.entities.jobs import Job
from lapis.errors import LapisError
from lapis.specs.job import render_command

SPOOL = "spool"


@dataclass(frozen=True)
class Prepared:
    command: str
    inputs: dict[str, str]
    outputs: dict[str, str]
    downloads: dict[str, dict[str, str]]  # input name -> {url, dest}: the supervisor fetches
    # by-reference inputs the supervisor reads (lapis/compute/data_inputs.py): name ->
    # {mode, type, dest, uri}; direct-mode variables and folders the job may only read
    data_inputs: dict[str, dict[str, str]] = field(default_factory=dict)
    direct_env: dict[str, str] = field(default_factory=dict)
    read_only: list[str] = field(default_factory=list)


def _chmod(path: Path, mode: int) -> None:
    """Change a file's mode, never a link's target: a job may leave a link to any file
    (``credentials.json``, ``/etc/shadow``) in its folder, and chmod follows links."""
    if not path.is_symlink():
        path.chmod(mode)


def _read_only(path: Path) -> None:
    if path.is_file():
        _chmod(path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        return
    for dirpath, _dirnames, filenames in os.walk(path, topdown=False):
        for name in filenames:
            _chmod(Path(dirpath, name), stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        _chmod(Path(dirpath), stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)


def _writable(path: Path) -> None:
    """Undo ``_read_only`` so an old folder can be replaced."""
    for dirpath, _dirs, filenames in os.walk(path):
        _chmod(Path(dirpath), 0o755)
        for name in filenames:
            _chmod(Path(dirpath, name), 0o644)


def prepare(
    job: Job, folder: Path, snapshots: Path, data: Mapping[str, Mapping[str, Any]] | None = None
) -> Prepared:
    if folder.exists():
        _writable(folder)
        for child in folder.iterdir():
            if child.name not in ("cancel", "attempts"):  # a cancel that raced the start
                # must survive, and so must the logs of attempts lost with their node
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    wd = folder / "wd"
    code = job.spec.get("code")
    if code:
        shutil.copytree(snapshots / check_digest(code["digest"]), wd, symlinks=True)
    env = job.spec.get("environment") or {}
    if env.get("kind") == "docker":  # the Docker build context, built by the supervisor
        shutil.copytree(snapshots / check_digest(env["digest"]), folder / "build-context")
    wd.mkdir(exist_ok=True)
    (wd / "outputs").mkdir(exist_ok=True)
    (wd / "logs").mkdir(exist_ok=True)
    (folder / "user_logs").mkdir()
    (folder / "system_logs").mkdir()
    inputs: dict[str, str] = {}
    downloads: dict[str, dict[str, str]] = {}
    data_inputs: dict[str, dict[str, str]] = {}
    direct_env: dict[str, str] = {}
    read_only: list[str] = []
    for name, item in job.spec.get("inputs", {}).items():
        if item.get("source"):  # by reference: the supervisor reads it, or the job does
            opened = (data or {}).get(name)
            if opened is None:
                raise LapisError(f"input {name}: its data source was not opened for the job")
            if item["mode"] == "direct":
                inputs[name], more = data_inputs_mod.direct(opened)
                direct_env.update(more)
                if data_inputs_mod.on_host(opened) is not None:
                    read_only.append(inputs[name])
                continue
            leaf = PurePosixPath(str(opened.get("rel") or "")).name or name
            dest = folder / "inputs" / name / leaf
            data_inputs[name] = {
                "mode": item["mode"],
                "type": item["type"],
                "dest": str(dest),
                "uri": str(item.get("uri") or item["path"]),
            }
            inputs[name] = str(dest)
        elif item.get("url"):  # the supervisor fetches it before the command starts
            leaf = PurePosixPath(urllib.parse.urlsplit(item["url"]).path).name
            if leaf in ("", ".", ".."):  # the file's name only, never a way out of the folder
                leaf = name
            dest = folder / "inputs" / name / leaf
            downloads[name] = {"url": item["url"], "dest": str(dest)}
            inputs[name] = str(dest)
        elif "path" in item:
            if item["path"] is None:
                continue
            src = Path(item["path"])
            dest = folder / "inputs" / name
            dest.mkdir(parents=True)
            if src.is_dir():
                dest = dest / src.name
                shutil.copytree(src, dest)
            else:
                dest = dest / src.name
                shutil.copy2(src, dest)
            _read_only(dest)
            inputs[name] = str(dest)
        elif item.get("value") is not None:
            value = item["value"]
            inputs[name] = str(value).lower() if isinstance(value, bool) else str(value)
    outputs: dict[str, str] = {}
    for name in job.spec.get("outputs", {}):
        out = folder / "named-outputs" / name
        out.mkdir(parents=True)
        outputs[name] = str(out)
    command = render_command(job.spec["command"], inputs, outputs)
    return Prepared(command, inputs, outputs, downloads, data_inputs, direct_env, read_only)


def job_environment(
    job: Job, compute: Compute, url: str, token: str | None, ca_bundle: str | None = None
) -> dict[str, str]:
    """Variables every job sees, whatever runs it: tracking for plain ``mlflow``, Lapis' own.

    The backend adds what depends on where the job runs (input and output
    paths, the spool folder) and then the job's own ``environment_variables``.
    """
    env = {
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_RUN_ID": job.run_id,
        "MLFLOW_EXPERIMENT_ID": job.experiment_id,
        "LAPIS_URL": url,
        "LAPIS_RUN_ID": job.run_id,
        "LAPIS_JOB_NAME": job.name,
        "LAPIS_EXPERIMENT_ID": job.experiment_id,
        "LAPIS_COMPUTE": compute.name,
        "AZUREML_RUN_ID": job.run_id,
        "PYTHONUNBUFFERED": "1",
    }
    if token:
        env["MLFLOW_TRACKING_TOKEN"] = token
        env["LAPIS_TOKEN"] = token
    # the mlflow client retries for about ten minutes before giving up on a request
    env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "10"
    if ca_bundle:  # public roots plus the server's self-signed certificate
        env["SSL_CERT_FILE"] = env["REQUESTS_CA_BUNDLE"] = ca_bundle
    return env


def write_sources_file(folder: Path, sources: Mapping[str, Any]) -> None:
    """The opened data sources (credentials) for the supervisor, which deletes the file
    before the command starts: this user only, written atomically."""
    tmp = folder / f".{data_inputs_mod.SOURCES_FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(sources, fh)
    tmp.rename(folder / data_inputs_mod.SOURCES_FILE)


def write_job_file(folder: Path, data: dict[str, Any]) -> None:
    """``job.json`` holds a token: readable by this user only, written atomically."""
    tmp = folder / f".{JOB_FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    tmp.rename(folder / JOB_FILE)


def artifact_folders(job: Job, folder: Path) -> list[tuple[Path, str]]:
    """(local folder, artifact prefix) pairs kept when a job ends."""
    pairs = [
        (folder / "wd" / "outputs", "outputs"),
        (folder / "wd" / "logs", "logs"),
        (folder / "user_logs", "user_logs"),
        (folder / "system_logs", "system_logs"),
        (folder / "attempts", "attempts"),
    ]
    for name, out in job.spec.get("outputs", {}).items():
        if not out.get("dest"):  # one with a datastore path goes there instead (ending.py)
            pairs.append((folder / "named-outputs" / name, f"named-outputs/{name}"))
    return pairs


def live_folders(folder: Path) -> list[tuple[Path, str]]:
    return [(folder / "wd" / "logs", "logs"), (folder / "user_logs", "user_logs")]


def upload_tree(
    store: ArtifactStore,
    local: Path,
    prefix: str,
    seen: dict[str, tuple[int, int]] | None = None,
    skipped: Callable[[str], None] | None = None,
) -> int:
    """Copy every regular file under ``local`` to ``prefix``; with ``seen``, only changed ones.

    Links are never followed (a job's link to ``/etc/shadow`` must not become a
    downloadable artifact) and nor are pipes or devices read: each one skipped is
    reported to ``skipped`` with what it was, so the job's log can say so.
    """
    if not local.is_dir() or local.is_symlink():
        return 0
    copied = 0
    for dirpath, dirnames, filenames in os.walk(local):
        for name in sorted(filenames + [d for d in dirnames if Path(dirpath, d).is_symlink()]):
            path = Path(dirpath, name)
            rel = path.relative_to(local).as_posix()
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode):
                if skipped is not None:
                    what = (
                        f"a symbolic link to {os.readlink(path)}"
                        if stat.S_ISLNK(st.st_mode)
                        else "not a regular file"
                    )
                    skipped(f"{rel} is {what}; not collected")
                continue
            key = f"{prefix}/{rel}"
            mark = (st.st_size, st.st_mtime_ns)
            if seen is not None and seen.get(key) == mark:
                continue
            store.put_file(key, str(path))
            if seen is not None:
                seen[key] = mark
            copied += 1
    return copied


def discard_copies(folder: Path) -> None:
    """Once uploaded, the code copy, input copies and outputs only cost disk: drop them.

    The logs stay (``lapis job logs`` reads them here), as do the job and event files.
    """
    from lapis.compute import fuse_mount

    for point in fuse_mount.mounted_below(folder):  # a supervisor killed with its mounts up
        fuse_mount.unmount(point)
    for name in ("wd", "inputs", "mounts", "named-outputs"):
        path = folder / name
        if path.exists():
            _writable(path)
            shutil.rmtree(path, ignore_errors=True)
