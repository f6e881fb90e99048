"""Job inputs given as ``http(s)://`` URLs: fetched by the job's supervisor, cached.

The download happens in the supervisor (the job's side, with the job's network reach),
never in the server, so a job cannot make the server fetch on its behalf. Files are kept
in a cache shared by the host's jobs, one folder per URL (its SHA-256): the body and what
the server said of it (``ETag``, ``Last-Modified``); the next job asking for the same URL
revalidates with ``If-None-Match``/``If-Modified-Since`` and reuses the body on ``304``.
The job gets a read-only copy in its inputs folder, so one job cannot change what
another reads. Standard library only: this runs
before the job starts and adds to its start-up time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

CHUNK = 1024 * 1024
TIMEOUT_S = 60


def fetch(url: str, cache_root: Path, dest: Path) -> str:
    """Put the body of ``url`` at ``dest``; returns a line for the job's log."""
    folder = cache_root / hashlib.sha256(url.encode()).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    body, meta_path = folder / "body", folder / "meta.json"
    meta: dict[str, Any] = {}
    if body.is_file() and meta_path.is_file():
        with contextlib.suppress(ValueError, OSError):
            meta = json.loads(meta_path.read_text())
    request = urllib.request.Request(url, headers={"User-Agent": "lapis-job-input"})
    if meta.get("etag"):
        request.add_header("If-None-Match", str(meta["etag"]))
    if meta.get("last_modified"):
        request.add_header("If-Modified-Since", str(meta["last_modified"]))
    how = ""
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
            tmp = folder / f".body.{uuid.uuid4().hex}"
            size = 0
            with open(tmp, "wb") as fh:
                while chunk := answer.read(CHUNK):
                    fh.write(chunk)
                    size += len(chunk)
            os.replace(tmp, body)
            meta = {
                "url": url,
                "etag": answer.headers.get("ETag"),
                "last_modified": answer.headers.get("Last-Modified"),
                "bytes": size,
            }
            meta_path.write_text(json.dumps(meta))
            how = f"downloaded {size:,} bytes"
    except urllib.error.HTTPError as exc:
        if exc.code != 304 or not body.is_file():
            raise RuntimeError(f"{url}: the server answered {exc.code} {exc.reason}") from None
        how = f"not modified since cached ({body.stat().st_size:,} bytes)"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RuntimeError(f"{url}: cannot be fetched: {reason}") from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(body, dest)  # a copy, not a link: the job must not reach the cache
    dest.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return f"input {url}: {how}"
