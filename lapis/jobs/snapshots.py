"""Keeping an uploaded code snapshot: unpacked beside its final folder, its digest checked
against its files, then renamed into place — so a folder named by a digest always holds
exactly the code that hashes to it, whatever a client sent or however an upload ended."""

from __future__ import annotations

import contextlib
import shutil
import tarfile
import uuid
import zlib
from pathlib import Path
from typing import IO

from lapis.api.jobs import SnapshotStored
from lapis.artifacts.snapshot import digest_files, unpack
from lapis.errors import InvalidParameterValue
from lapis.util import DISK_FULL


def keep_snapshot(final: Path, data: IO[bytes]) -> SnapshotStored:
    """Store the tar stream ``data`` as ``final`` (whose name is the claimed digest)."""
    digest = final.name
    if final.is_dir():
        return SnapshotStored(digest=digest, stored=False)
    tmp = final.parent / f".{digest}.{uuid.uuid4().hex}"
    tmp.mkdir(parents=True)
    try:
        try:
            files = unpack(data, tmp)
        except (tarfile.TarError, EOFError, zlib.error, ValueError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno in DISK_FULL:
                raise
            raise InvalidParameterValue(f"snapshot upload is not a tar archive: {exc}") from None
        actual = digest_files(tmp, files)
        if actual != digest:
            raise InvalidParameterValue(
                f"snapshot content hashes to {actual[:12]}…, not {digest[:12]}…"
            )
        with contextlib.suppress(OSError):  # a concurrent upload of the same code won
            tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return SnapshotStored(digest=digest, stored=True, files=len(files))
