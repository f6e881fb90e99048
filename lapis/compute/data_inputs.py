"""A job's by-reference inputs, read in their mode by the job's own supervisor.

The server resolved each input to a datastore and a path (lapis/data/job_data.py)
and the backend handed the supervisor the datastore's settings and credential in
``data-sources.json`` (0600), which the supervisor reads and deletes before the
user's command starts: the command sees the data, not the key (but in ``direct``
mode, where reading the storage itself is the point).

The modes, as Azure names them:

- ``download`` / ``eval_download``: the files are copied into the job's
  ``inputs/<name>/`` before the command starts, read-only.
- ``ro_mount`` / ``eval_mount``: a read-only view, with no copy where none is
  needed. A datastore whose files are on this host (``local``, the workspace's
  own stores on a local artifact root) is read **in place**: the input is a link
  to the folder, and the job's Landlock sandbox grants it read access only. A
  remote store (Blob, ADLS, S3) is a **FUSE mount** (lapis/compute/fuse_mount.py):
  read-only and lazy, each file read block by block as the command reads it.
  Where the host cannot mount (no /dev/fuse, libfuse 2 or fusepy, or
  ``LAPIS_DATA_FUSE=off``), it is streamed into the host's read-only cache instead
  (one copy per path and listing, shared by the host's jobs, refetched when the
  listing changes; the least recently used copies that no running job reads are
  removed to keep it under ``LAPIS_DATA_CACHE_GB``, 50 by default) and read there.
  The log says which each input got and why.
  Without Landlock (or with the sandbox off) no view can be made read-only, so
  the files are copied instead, and the log says so.
- ``direct``: nothing is read here; the command gets a URL fsspec opens
  (``abfs://``, ``s3://`` or the local folder) and the credential in the
  variables the storage libraries read (see :func:`direct`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import shutil
import stat
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SOURCES_FILE = "data-sources.json"
CHUNK = 4 * 1024 * 1024
WORKERS = 4  # files read at once from a remote store


def _open(src: Mapping[str, Any]) -> tuple[Any, str, str]:
    """(filesystem, the datastore's root in it, the input's path in it)."""
    from lapis.data.filesystems import open_datastore

    fs, root = open_datastore(str(src["kind"]), src["settings"], src.get("secrets") or {})
    rel = str(src.get("rel") or "").strip("/")
    return fs, root, (posixpath.join(root, rel) if rel else root)


def on_host(src: Mapping[str, Any]) -> str | None:
    """The source's folder on this host, when its bytes are here already."""
    kind = src["kind"]
    if kind == "local":
        root = str(src["settings"]["path"])
    elif kind == "workspace" and "://" not in str(src["settings"]["url"]).replace("file://", ""):
        root = str(src["settings"]["url"]).removeprefix("file://")
    else:
        return None
    rel = str(src.get("rel") or "").strip("/")
    return os.path.join(root, rel) if rel else root


def direct(src: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """``direct`` mode: the URL the command opens with fsspec, and the variables that
    give the storage library the datastore's credential."""
    here = on_host(src)
    if here is not None:
        return here, {}
    s, secrets, rel = src["settings"], src.get("secrets") or {}, str(src.get("rel") or "")
    env: dict[str, str] = {}
    if src["kind"] == "s3":
        if secrets.get("access_key_id"):
            env["AWS_ACCESS_KEY_ID"] = secrets["access_key_id"]
            env["AWS_SECRET_ACCESS_KEY"] = secrets.get("secret_access_key", "")
        if secrets.get("session_token"):
            env["AWS_SESSION_TOKEN"] = secrets["session_token"]
        if s.get("endpoint_url"):
            env["AWS_ENDPOINT_URL"] = env["AWS_ENDPOINT_URL_S3"] = str(s["endpoint_url"])
        if s.get("region"):
            env["AWS_DEFAULT_REGION"] = str(s["region"])
        return f"s3://{posixpath.join(str(s['bucket']), rel)}".rstrip("/"), env
    holder = s.get("container_name") or s.get("filesystem")
    account = str(s["account_name"])
    if s.get("account_url"):  # Azurite, a sovereign cloud: the endpoint in a connection string
        parts = [f"DefaultEndpointsProtocol={str(s['account_url']).split('://')[0]}",
                 f"AccountName={account}", f"BlobEndpoint={s['account_url']}"]  # fmt: skip
        if secrets.get("account_key"):
            parts.append(f"AccountKey={secrets['account_key']}")
        elif secrets.get("sas_token"):
            parts.append(f"SharedAccessSignature={secrets['sas_token'].lstrip('?')}")
        env["AZURE_STORAGE_CONNECTION_STRING"] = ";".join(parts)
    else:
        env["AZURE_STORAGE_ACCOUNT_NAME"] = account
        for key, var in (("account_key", "AZURE_STORAGE_ACCOUNT_KEY"),
                         ("sas_token", "AZURE_STORAGE_SAS_TOKEN"),
                         ("tenant_id", "AZURE_STORAGE_TENANT_ID"),
                         ("client_id", "AZURE_STORAGE_CLIENT_ID"),
                         ("client_secret", "AZURE_STORAGE_CLIENT_SECRET")):  # fmt: skip
            if secrets.get(key):
                env[var] = secrets[key]
        if not secrets:
            env["AZURE_STORAGE_ANON"] = "true"
    return f"abfs://{posixpath.join(str(holder), rel)}".rstrip("/"), env


def _read_only(path: Path) -> None:
    if path.is_file():
        path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        return
    for dirpath, _dirs, files in os.walk(path, topdown=False):
        for name in files:
            Path(dirpath, name).chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        Path(dirpath).chmod(0o555)


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n //= 1024
    return str(n)


def _entries(fs: Any, root: str, where: str) -> tuple[bool, list[tuple[str, int, str]]]:
    """(is a file, [(relative path, size, version mark)]) of what is at ``where``; files
    reached by a link out of the datastore's ``root`` are left out (filesystems.escapes)."""
    from lapis.data.filesystems import escapes

    if escapes(fs, root, where):
        raise InputError(f"{where} leads out of its datastore by a symbolic link")
    info = fs.info(where)
    if info.get("type") != "directory":
        return True, [("", int(info.get("size") or 0), _mark(info))]
    found = fs.find(where, detail=True)
    out = []
    for path, meta in sorted(found.items()):
        if meta.get("type") == "directory" or escapes(fs, root, path):
            continue
        rel = (
            path[len(where.rstrip("/")) :].lstrip("/")
            if path.startswith(where.rstrip("/"))
            else path
        )
        out.append((rel, int(meta.get("size") or 0), _mark(meta)))
    return False, out


def _mark(meta: Mapping[str, Any]) -> str:
    for key in ("etag", "ETag", "last_modified", "LastModified", "mtime", "created"):
        if meta.get(key) is not None:
            return str(meta[key])
    return ""


def _copy(
    fs: Any, where: str, is_file: bool, entries: list[tuple[str, int, str]], dest: Path
) -> int:
    """Stream the files into ``dest`` (a file, or a folder), ``WORKERS`` at a time;
    bytes written."""
    from concurrent.futures import ThreadPoolExecutor

    def one(rel: str) -> int:
        target = dest if is_file else dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with (
            fs.open(where if is_file else posixpath.join(where, rel), "rb") as src,
            open(target, "wb") as out,
        ):
            while chunk := src.read(CHUNK):
                out.write(chunk)
                written += len(chunk)
        return written

    if not is_file:
        dest.mkdir(parents=True, exist_ok=True)  # an empty folder is still the input
    with ThreadPoolExecutor(WORKERS) as pool:
        return sum(pool.map(one, [rel for rel, *_ in entries]))


class InputError(RuntimeError):
    """An input could not be read; the job fails with this reason."""


def _check_type(kind: str, is_file: bool, uri: str) -> None:
    if kind == "uri_file" and not is_file:
        raise InvalidType(f"{uri} is a folder, but the input's type is uri_file")
    if kind in ("uri_folder", "mltable") and is_file:
        raise InvalidType(f"{uri} is a file, but the input's type is {kind}")


class InvalidType(InputError):
    pass


def materialize(
    job_dir: Path, job: Mapping[str, Any], sandboxed: bool, cache_root: Path
) -> tuple[list[str], list[str]]:
    """Read every by-reference input in its mode: (log lines, folders to grant read-only).
    Raises InputError naming the input and the storage service's reason."""
    wanted: Mapping[str, Mapping[str, Any]] = job.get("data_inputs") or {}
    if not wanted:
        return [], []
    secret_file = job_dir / SOURCES_FILE
    try:
        sources = json.loads(secret_file.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"the job's data sources could not be read: {exc}") from None
    finally:
        with contextlib.suppress(OSError):
            secret_file.unlink()  # the command must not find the credentials
    from lapis.data.filesystems import storage_reason

    lines: list[str] = []
    grants: list[str] = []
    for name, item in wanted.items():
        src, dest, uri = sources[name], Path(item["dest"]), str(item["uri"])
        mode = str(item["mode"])
        try:
            here = on_host(src)
            if here is not None and mode in ("ro_mount", "eval_mount") and sandboxed:
                # no check of links needed: the sandbox grants the folder itself, and a
                # link out of it lands where the job's own rules say
                if not os.path.exists(here):
                    raise InputError(f"{uri} does not exist")
                _check_type(str(item["type"]), os.path.isfile(here), uri)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(here, dest)
                grants.append(here)
                lines.append(f"input {name}: {mode} of {uri}: read in place, read-only")
                continue
            fs, root, where = _open(src)
            if mode in ("ro_mount", "eval_mount") and here is None and sandboxed:
                mounted = _mount(name, src, fs, where, dest, uri, str(item["type"]), mode,
                                 job_dir, job.get("env") or {})  # fmt: skip
                if mounted is not None:  # in the job's folder, read-only by the kernel:
                    lines.append(mounted)  # no sandbox grant to add
                    continue
            try:
                is_file, entries = _entries(fs, root, where)
            except FileNotFoundError:
                raise InputError(f"{uri} does not exist") from None
            _check_type(str(item["type"]), is_file, uri)
            size = sum(e[1] for e in entries)
            if mode in ("ro_mount", "eval_mount") and here is None and sandboxed:
                key = json.dumps([src["kind"], {k: v for k, v in src["settings"].items()},
                                  where], sort_keys=True)  # fmt: skip
                folder, fetched = _cached(fs, where, is_file, entries, cache_root, key)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(folder, dest)
                grants.append(str(folder))
                how = f"streamed {_size(fetched)} into" if fetched else "all found in"
                lines.append(
                    f"input {name}: {mode} of {uri}: no FUSE mount ({_no_fuse.get(name)}); "
                    f"{how} the host's read-only cache ({len(entries)} files, {_size(size)})"
                )
                continue
            _copy(fs, where, is_file, entries, dest)
            _read_only(dest)
            why = "" if mode.endswith("download") else " (no read-only view without Landlock)"
            lines.append(
                f"input {name}: {mode} of {uri}: downloaded {len(entries)} files, "
                f"{_size(size)}{why}"
            )
        except InputError as exc:
            raise InputError(f"input {name}: {exc}") from None
        except Exception as exc:  # the storage libraries raise their own types
            raise InputError(f"input {name}: {uri}: {storage_reason(exc)}") from None
    return lines, grants


_no_fuse: dict[str, str] = {}  # input -> why it was not mounted, for its log line
MOUNTS: list[tuple[Any, Path]] = []  # (serving process, mount point) made by this process


def _mount(
    name: str, src: Mapping[str, Any], fs: Any, where: str, dest: Path, uri: str, kind: str,
    mode: str, job_dir: Path, job_env: Mapping[str, str],
) -> str | None:  # fmt: skip
    """A lazy read-only FUSE mount of a remote input under the job's folder: its log
    line; None when this host cannot mount (the reason is kept for the cache's line)."""
    from lapis.compute import fuse_mount

    why = fuse_mount.available(job_env)
    if why is not None:
        _no_fuse[name] = why
        return None
    try:
        info = fs.info(where)
    except FileNotFoundError:
        raise InputError(f"{uri} does not exist") from None
    is_file = info.get("type") != "directory"
    _check_type(kind, is_file, uri)
    folder = posixpath.dirname(where.rstrip("/")) if is_file else where
    point = job_dir / "mounts" / name
    try:
        proc = fuse_mount.start(src, folder, point)
    except RuntimeError as exc:
        _no_fuse[name] = f"the mount failed: {exc}"
        return None
    MOUNTS.append((proc, point))
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(point / posixpath.basename(where.rstrip("/")) if is_file else point, dest)
    what = "1 file" if is_file else "a folder"
    return f"input {name}: {mode} of {uri}: FUSE mount, read-only, read lazily ({what})"


def unmount_all() -> None:
    """End this supervisor's input mounts (the job has ended)."""
    from lapis.compute import fuse_mount

    while MOUNTS:
        proc, point = MOUNTS.pop()
        with contextlib.suppress(OSError):
            fuse_mount.stop(proc, point)


def _cached(
    fs: Any, where: str, is_file: bool, entries: list[tuple[str, int, str]], root: Path, key: str
) -> tuple[Path, int]:
    """The cache's copy of ``where`` for this listing: (its path, bytes fetched now)."""
    listing = hashlib.sha256(json.dumps([key, entries]).encode()).hexdigest()
    slot = root / hashlib.sha256(key.encode()).hexdigest()[:32]
    final = slot / listing
    leaf = "file" if is_file else "files"
    if (final / leaf).exists():
        _hold(final)
        return final / leaf, 0
    prune(root, need=sum(e[1] for e in entries))
    slot.mkdir(parents=True, exist_ok=True)
    tmp = slot / f".{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        fetched = _copy(fs, where, is_file, entries, tmp / leaf)
        _read_only(tmp / leaf)
        with contextlib.suppress(OSError):  # another job filled it meanwhile: use theirs
            tmp.rename(final)
        _hold(final)
    finally:
        if tmp.exists():
            for dirpath, _dirs, _files in os.walk(tmp):
                os.chmod(dirpath, 0o755)
            shutil.rmtree(tmp, ignore_errors=True)
    return final / leaf, fetched


# --- the cache's size -----------------------------------------------------------------
_HELD: list[int] = []  # descriptors of the copies this supervisor's job reads (shared locks)


def _limit() -> int:
    """``LAPIS_DATA_CACHE_GB`` (default 50): the most the host's data cache keeps."""
    try:
        return int(float(os.environ.get("LAPIS_DATA_CACHE_GB", "50")) * 1024**3)
    except ValueError:
        return 50 * 1024**3


def _hold(copy: Path) -> None:
    """Mark a copy in use for as long as this supervisor lives (its job's life): a shared
    lock that ``prune`` will not break, and the time it was last used."""
    import fcntl

    with contextlib.suppress(OSError):
        os.utime(copy)
        fd = os.open(copy, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_SH)
        _HELD.append(fd)


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def prune(root: Path, need: int = 0) -> list[Path]:
    """Remove the least recently used copies until the cache, with ``need`` more bytes,
    fits ``LAPIS_DATA_CACHE_GB``; a copy a running job reads (locked) is never removed.
    Returns what was removed."""
    import fcntl

    if not root.is_dir():
        return []
    copies = []
    for slot in root.iterdir():
        if slot.is_dir():
            copies += [c for c in slot.iterdir() if c.is_dir() and not c.name.startswith(".")]
    sized = sorted(((c.stat().st_mtime, c, _tree_size(c)) for c in copies), key=lambda t: t[0])
    total, limit, removed = sum(size for *_, size in sized) + need, _limit(), []
    for _mtime, copy, size in sized:
        if total <= limit:
            break
        try:
            fd = os.open(copy, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a running job reads it
            os.close(fd)
            continue
        try:
            for dirpath, _dirs, _files in os.walk(copy):
                os.chmod(dirpath, 0o755)
            shutil.rmtree(copy, ignore_errors=True)
        finally:
            os.close(fd)
        total -= size
        removed.append(copy)
    return removed
