"""Size-based rotation for logs that a running child process keeps appending to.

A scoring instance writes one access line per request to a file it holds open
(its stdout), so the log grows with traffic for as long as the deployment lives.
The owner of the file checks its size now and then; past the limit the file is
copied to ``name.1`` (older copies shift to ``.2`` … ``.keep``) and truncated in
place. The child's descriptor was opened with ``O_APPEND``, so its next write lands
at the new end — no restart, no signal. Lines written between the copy and the
truncation can be lost; that is the price of not touching the writer (the same
trade-off as logrotate's ``copytruncate``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

MAX_BYTES = 10 * 1024 * 1024
KEEP = 3


def rotate_if_large(path: Path, max_bytes: int = MAX_BYTES, keep: int = KEEP) -> bool:
    """Rotate ``path`` when it is over ``max_bytes``; True when it did."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    for i in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{i}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{i + 1}"))
    with contextlib.suppress(FileNotFoundError):
        shutil.copyfile(path, path.with_name(f"{path.name}.1"))
        os.truncate(path, 0)
    return True
