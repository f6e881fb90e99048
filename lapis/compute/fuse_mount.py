"""A read-only FUSE mount of one datastore folder, for a job's ``ro_mount`` input.

``python -m lapis.compute.fuse_mount MOUNTPOINT`` reads the source (kind, settings,
credential, path) as JSON on stdin — never from a file or the environment, where the
job could find the credential — and serves that folder at MOUNTPOINT until it is
unmounted. Files are read lazily, block by block, as the job reads them
(``fsspec.fuse`` over the storage library's filesystem); the kernel refuses every
write (the mount is ``ro``).

It is a process of its own, started by the job's supervisor before the command, so
libfuse's signal handling never touches the supervisor's, and a crash of the mount
leaves the supervisor to say what happened. :func:`available` says why a host cannot
mount (no ``/dev/fuse``, no libfuse 2, no ``fusepy``, or ``LAPIS_DATA_FUSE=off``); the
supervisor then falls back to the host's read-only cache and says so in the job's log.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MNT_DETACH = 2
READY_TIMEOUT = 20.0


def available(job_env: Mapping[str, str] | None = None) -> str | None:
    """None when this host can make FUSE mounts; else why not, in a few words. The
    server's environment or the job's ``environment_variables`` may turn it off."""
    setting = (job_env or {}).get("LAPIS_DATA_FUSE", os.environ.get("LAPIS_DATA_FUSE", ""))
    if str(setting).lower() in ("0", "off", "false", "no"):
        return "turned off by LAPIS_DATA_FUSE"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse on this host"
    if ctypes.util.find_library("fuse") is None:
        return "libfuse 2 is not installed (Debian: apt-get install libfuse2)"
    try:
        import fuse  # noqa: F401  (fusepy)
    except (ImportError, OSError):
        return "fusepy is not installed (pip install 'lapis[data]')"
    if os.geteuid() != 0 and shutil.which("fusermount") is None:
        return "fusermount is not installed (Debian: apt-get install fuse)"
    return None


def start(src: Mapping[str, Any], where: str, mountpoint: Path) -> subprocess.Popen[bytes]:
    """Mount ``where`` (a folder in the source's filesystem) at ``mountpoint``; returns
    the serving process once the mount is up. Raises RuntimeError with the reason."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lapis.compute.fuse_mount", str(mountpoint)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps({**src, "where": where}).encode())
    proc.stdin.close()
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace")
            raise RuntimeError(_last_line(err) or f"the mount exited with {proc.returncode}")
        if os.path.ismount(mountpoint):
            return proc
        time.sleep(0.05)
    stop(proc, mountpoint)
    raise RuntimeError(f"the mount was not up within {READY_TIMEOUT:.0f} s")


def stop(proc: subprocess.Popen[bytes] | None, mountpoint: Path) -> None:
    """Unmount and end the serving process (which ends once unmounted)."""
    unmount(mountpoint)
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def unmount(mountpoint: Path) -> None:
    """Lazily unmount, as root directly, else through fusermount; a mount whose server
    died (``Transport endpoint is not connected``) goes too."""
    path = os.fsencode(str(mountpoint))
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.umount2(path, MNT_DETACH) == 0:
        return
    helper = shutil.which("fusermount") or shutil.which("fusermount3")
    if helper:
        subprocess.run([helper, "-u", "-z", str(mountpoint)], capture_output=True, check=False)


def mounted_below(folder: Path) -> list[Path]:
    """The mounts under ``folder`` (deepest first), dead ones included: a job folder is
    only removed once its input mounts are gone."""
    base = os.path.realpath(folder).rstrip("/") + "/"
    found = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as fh:
        for line in fh:
            point = _unescape(line.split()[4])
            if point.startswith(base):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _unescape(text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def main(argv: list[str]) -> int:
    import errno

    from fsspec.fuse import FUSEr
    from fuse import FUSE, FuseOSError

    from lapis.data.filesystems import open_datastore

    class ReadOnly(FUSEr):  # type: ignore[misc]
        """fsspec's FUSE operations with every write refused (the kernel's ``ro``
        already does; this keeps a remount without it from writing to the datastore)."""

        def _refuse(self, *args: Any, **kwargs: Any) -> Any:
            raise FuseOSError(errno.EROFS)

        create = write = mkdir = rmdir = unlink = truncate = chmod = chown = _refuse
        rename = symlink = link = utimens = _refuse

    mountpoint = argv[0]
    src = json.loads(sys.stdin.read())
    fs, _root = open_datastore(str(src["kind"]), src["settings"], src.get("secrets") or {})
    ops = ReadOnly(fs, str(src["where"]).rstrip("/") + "/", ready_file=False)
    # foreground: this process is the mount's life; threads: reads of several files
    # at once; ro: the kernel refuses writes before they reach us
    FUSE(ops, mountpoint, foreground=True, nothreads=False, ro=True, fsname="lapis-data")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
