"""The workspace home on disk: private, and held by one server at a time.

- **Private**: the home is 0700 and the files holding secrets (``lapis.db`` and
  its WAL, ``credentials.json``, ``workspace.key``, ``server.json``) are 0600. The
  server runs with umask 077, so whatever it creates later (artifacts, job
  folders, environment logs) is private to its user too.
- **One server**: ``lapis server`` takes an exclusive ``flock`` on
  ``home/server.lock`` before it touches anything, and holds it until it exits
  (the kernel drops it on kill -9 too, so a crash never leaves a stale lock). A
  second server on the same home reads who holds it from the file and exits
  with that in its message, instead of ending the first one's scoring
  instances and removing its ``server.json``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import IO

from lapis.errors import LapisError

LOCK_FILE = "server.lock"
PRIVATE_FILES = (
    "lapis.db",
    "lapis.db-wal",
    "lapis.db-shm",
    "credentials.json",
    "workspace.key",
    "server.json",
)


class HomeInUse(LapisError):
    error_code = "HOME_IN_USE"


def make_private(home: Path) -> None:
    """Create the home 0700 (or tighten it) and make its secret files 0600."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home, 0o700)
    for name in PRIVATE_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(home / name, 0o600)


def lock_home(home: Path) -> IO[str]:
    """Hold the home for this process; the returned file must stay open while serving."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    fh = open(home / LOCK_FILE, "a+")  # noqa: SIM115 - held for the server's lifetime
    os.chmod(home / LOCK_FILE, 0o600)
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        try:
            holder = json.loads(fh.read() or "{}")
        except ValueError:
            holder = {}
        fh.close()
        who = f"process {holder['pid']}" if holder.get("pid") else "another process"
        where = f" serving {holder['url']}" if holder.get("url") else ""
        raise HomeInUse(
            f"workspace home {home} is in use by {who}{where}; stop that server first "
            "or give this one another --home"
        ) from None
    record_holder(fh, {"pid": os.getpid()})
    return fh


def record_holder(fh: IO[str], info: dict[str, object]) -> None:
    """Say in the lock file who holds it (read by the next server that is refused)."""
    fh.seek(0)
    fh.truncate()
    fh.write(json.dumps(info))
    fh.flush()
