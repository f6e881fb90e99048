"""Local data to the workspace's default datastore, as the client's own work.

The files are hashed here (sha256 each), the server is told what will come and
answers which files it does not have yet — none when the same content was
uploaded before, the rest after an interrupted upload — and those are streamed,
each checked by the server against its hash. ``progress`` hears every chunk.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lapis.errors import InvalidParameterValue
from lapis.sdk.connection import LapisHTTP

CHUNK = 1024 * 1024
WORKERS = 4  # files in flight at once: enough to keep a link busy, few enough for a laptop


def _files(root: Path) -> list[tuple[str, Path]]:
    if root.is_file():
        return [(root.name, root)]
    found = sorted(p for p in root.rglob("*") if p.is_file())
    return [(p.relative_to(root).as_posix(), p) for p in found]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def upload_local(
    http: LapisHTTP,
    path: str | Path,
    kind: str,
    progress: Callable[[int, int], None] | None = None,
) -> str:
    """Upload a local file or folder; its ``azureml://datastores/...`` path.
    ``progress(done_bytes, total_bytes)`` is called as bytes go."""
    root = Path(path).expanduser()
    if not root.exists():
        raise InvalidParameterValue(f"'{path}' does not exist here")
    if kind == "uri_file" and not root.is_file():
        raise InvalidParameterValue(f"'{path}' is a folder but the type is uri_file")
    if kind in ("uri_folder", "mltable") and not root.is_dir():
        raise InvalidParameterValue(f"'{path}' is a file but the type is {kind}")
    files = _files(root.resolve())
    with ThreadPoolExecutor(WORKERS) as pool:  # hashlib lets go of the GIL on big blocks
        digests = list(pool.map(_sha256, [p for _rel, p in files]))
    manifest: list[dict[str, Any]] = [
        {"path": rel, "size": p.stat().st_size, "sha256": d}
        for (rel, p), d in zip(files, digests, strict=True)
    ]
    begun: dict[str, Any] = http.post(
        "/api/v1/data/uploads", {"leaf": root.resolve().name, "type": kind, "files": manifest}
    )
    todo = set(begun["missing"])
    kept: dict[str, int] = begun.get("partial") or {}  # files an earlier try left halfway
    total = sum(int(f["size"]) - kept.get(f["path"], 0) for f in manifest if f["path"] in todo)
    counter = _Counter(total, progress)

    def send(rel: str, local: Path) -> None:
        offset = kept.get(rel, 0)

        def chunks() -> Iterator[bytes]:
            with open(local, "rb") as fh:
                fh.seek(offset)
                while chunk := fh.read(CHUNK):
                    counter.add(len(chunk))
                    yield chunk

        http.request(
            "PUT",
            f"/api/v1/data/uploads/{begun['upload']}/files/{quote(rel, safe='/')}",
            content=chunks(),
            params={"offset": offset} if offset else None,
        )

    _each(send, [(rel, local) for rel, local in files if rel in todo])
    return str(begun["path"])


class _Counter:
    """Bytes moved so far, from several threads, told to ``progress``."""

    def __init__(self, total: int, progress: Callable[[int, int], None] | None) -> None:
        self.total, self.done, self.progress = total, 0, progress
        self.lock = threading.Lock()
        if progress:
            progress(0, total)

    def add(self, n: int) -> None:
        with self.lock:
            self.done += n
            if self.progress:
                self.progress(self.done, self.total)


def _each(fn: Callable[..., None], items: list[tuple[Any, ...]]) -> None:
    """``fn(*item)`` for every item, ``WORKERS`` at a time; the first error is raised
    (the files already moved stay, so running again resumes)."""
    if len(items) <= 1:
        for item in items:
            fn(*item)
        return
    with ThreadPoolExecutor(WORKERS) as pool:
        for future in [pool.submit(fn, *item) for item in items]:
            future.result()


def download_asset(
    http: LapisHTTP,
    name: str,
    version: str | None,
    target: str | Path,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Copy a data asset's files to ``<target>/<name>/`` (Azure's layout for ``az ml data
    download``); the folder. Each file lands under a ``.part`` name first, so an
    interrupted download never leaves a file that looks whole; files already there with
    the right size are not fetched again, so running it again resumes."""
    base = f"/api/v1/data/{quote(name, safe='')}/versions/{quote(version or 'latest', safe='')}"
    listing: dict[str, Any] = http.get(f"{base}/files")
    folder = Path(target).expanduser() / str(listing["name"])
    todo = []
    for item in listing["files"]:
        rel = str(item["path"])
        dest = (folder / rel).resolve()
        if folder.resolve() not in dest.parents:
            raise InvalidParameterValue(f"data asset file '{rel}' would land outside {folder}")
        if dest.is_file() and item.get("size") is not None and dest.stat().st_size == item["size"]:
            continue
        todo.append((rel, dest, int(item.get("size") or 0)))
    counter = _Counter(sum(t[2] for t in todo), progress)

    def fetch(rel: str, dest: Path, _size: int) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(f".{dest.name}.part")
        url = f"{base}/files/{quote(rel, safe='/')}"
        with http.stream("GET", url) as resp, open(part, "wb") as fh:
            for chunk in resp.iter_bytes(CHUNK):
                fh.write(chunk)
                counter.add(len(chunk))
        part.replace(dest)

    _each(fetch, todo)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def client_input(http: LapisHTTP, given: str, kind: str | None = None) -> tuple[str, str]:
    """What a client sends for data it names: a reference as it is (``azureml:…``,
    ``azureml://…``, a storage or http(s) URL), a local file or folder uploaded to the
    default datastore first (content-hashed, once) and named by its datastore path.
    Returns (path, type), the type inferred from a local path when not given."""
    text = str(given)
    if "://" in text or text.startswith("azureml:"):
        return text, kind or ("uri_file" if text.startswith(("http://", "https://")) else "")
    local = Path(text).expanduser().resolve()
    if not local.exists():
        raise InvalidParameterValue(f"'{given}': not a folder or a file here")
    kind = kind or ("uri_folder" if local.is_dir() else "uri_file")
    return upload_local(http, local, kind), kind
