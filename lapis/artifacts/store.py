"""The artifact store: one implementation for every fsspec filesystem.

Paths arrive from users, so each is normalised and checked to stay inside the
root before it touches a filesystem; ``..`` segments and absolute paths are
refused with the offending path in the message. Data moves in chunks in both
directions — a 50 GB checkpoint never sits in the server's memory.
"""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from lapis.errors import InvalidParameterValue, ResourceDoesNotExist

CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: str
    is_dir: bool
    file_size: int | None


def clean_relpath(path: str) -> str:
    """A relative, normalised path, or an error that names the bad one."""
    if path is None:
        return ""
    if "\x00" in path:
        raise InvalidParameterValue(f"Invalid artifact path '{path!r}': NUL byte")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":") or path.startswith("\\"):
        raise InvalidParameterValue(
            f"Invalid artifact path '{path}': absolute paths are not allowed"
        )
    parts = path.replace("\\", "/").split("/")
    if ".." in parts:
        raise InvalidParameterValue(
            f"Invalid artifact path '{path}': '..' segments are not allowed"
        )
    norm = posixpath.normpath("/".join(p for p in parts if p not in ("", ".")) or ".")
    return "" if norm == "." else norm


PROXY_SCHEME = "mlflow-artifacts:"


def proxied_path(uri: str) -> str | None:
    """The store-relative path of an ``mlflow-artifacts:`` URI, or None for other schemes."""
    if not uri.startswith(PROXY_SCHEME):
        return None
    rest = uri[len(PROXY_SCHEME) :]
    if rest.startswith("//"):  # mlflow-artifacts://host:port/path
        rest = rest[2:].partition("/")[2]
    return clean_relpath(rest.lstrip("/"))


class ArtifactStore:
    def __init__(self, root_uri: str) -> None:
        self.root_uri = root_uri.rstrip("/")
        self.fs, root = fsspec.core.url_to_fs(self.root_uri)
        self.root = root.rstrip("/")
        self.is_local = isinstance(self.fs, LocalFileSystem)
        self.fs.makedirs(self.root, exist_ok=True)

    def _full(self, rel: str) -> str:
        rel = clean_relpath(rel)
        return f"{self.root}/{rel}" if rel else self.root

    def local_path(self, rel: str) -> str | None:
        """The OS path of a file, when the store is local (lets the server use sendfile)."""
        return self._full(rel) if self.is_local else None

    def is_file(self, rel: str) -> bool:
        return bool(self.fs.isfile(self._full(rel)))

    async def write_stream(self, rel: str, chunks: AsyncIterator[bytes]) -> int:
        """Write to a temporary name then rename, so a reader never sees half a file."""
        full = self._full(rel)
        if not clean_relpath(rel):
            raise InvalidParameterValue("Artifact path must name a file")
        parent = posixpath.dirname(full)
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/.{posixpath.basename(full)}.{uuid.uuid4().hex}.part"
        written = 0
        try:
            with self.fs.open(tmp, "wb") as fh:
                async for chunk in chunks:
                    if chunk:
                        fh.write(chunk)
                        written += len(chunk)
            self.fs.mv(tmp, full)
        except BaseException:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)
            raise
        return written

    def partial_size(self, rel: str) -> int | None:
        """Bytes of a kept partial write (``append_stream``); None when there is none or the
        store cannot append (object stores: a file starts again from its first byte)."""
        if not self.is_local:
            return None
        full = self._full(rel)
        return int(self.fs.size(full)) if self.fs.exists(full) else None

    def read_partial(self, rel: str) -> Iterator[bytes]:
        with self.fs.open(self._full(rel), "rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk

    async def append_stream(self, partial: str, chunks: AsyncIterator[bytes], offset: int) -> int:
        """Append to the partial file at ``partial`` (which holds ``offset`` bytes); if the
        stream breaks, what came stays for the next try (``finish_partial`` moves it into
        place once checked). Returns the partial's size. Local stores only."""
        full = self._full(partial)
        self.fs.makedirs(posixpath.dirname(full), exist_ok=True)
        have = int(self.fs.size(full)) if self.fs.exists(full) else 0
        if have != offset:
            raise InvalidParameterValue(
                f"the upload resumes at byte {offset:,}, but {have:,} bytes are kept: start again"
            )
        written = offset
        with self.fs.open(full, "ab") as fh:
            async for chunk in chunks:
                if chunk:
                    fh.write(chunk)
                    written += len(chunk)
        return written

    def finish_partial(self, partial: str, final: str) -> None:
        target = self._full(final)
        self.fs.makedirs(posixpath.dirname(target), exist_ok=True)
        self.fs.mv(self._full(partial), target)

    def put_file(self, rel: str, local: str) -> None:
        """Copy a local file in under a temporary name, then rename (same guarantee as uploads)."""
        full = self._full(rel)
        parent = posixpath.dirname(full)
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/.{posixpath.basename(full)}.{uuid.uuid4().hex}.part"
        self.fs.put_file(local, tmp)
        self.fs.mv(tmp, full)

    def walk_files(self, rel: str) -> list[FileInfo]:
        """Every file below ``rel`` (recursively), paths relative to ``rel``."""
        full = self._full(rel)
        if not self.fs.isdir(full):
            return []
        out: list[FileInfo] = []
        found: dict[str, dict[str, Any]] = self.fs.find(full, detail=True)
        for name, info in sorted(found.items()):
            sub = posixpath.relpath(str(name), full)
            base = posixpath.basename(sub)
            if base.startswith(".") and base.endswith(".part"):
                continue
            out.append(FileInfo(path=sub, is_dir=False, file_size=int(info.get("size") or 0)))
        return out

    def iter_read(self, rel: str) -> Iterator[bytes]:
        full = self._full(rel)
        if not self.fs.isfile(full):
            raise ResourceDoesNotExist(f"Artifact '{rel}' does not exist")
        with self.fs.open(full, "rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk

    def list(self, rel: str) -> list[FileInfo]:
        """Direct children of a directory, paths relative to ``rel``'s parent store root."""
        full = self._full(rel)
        if not self.fs.isdir(full):
            return []
        out: list[FileInfo] = []
        entries: list[dict[str, Any]] = self.fs.ls(full, detail=True)
        base = clean_relpath(rel)
        for e in sorted(entries, key=lambda x: str(x["name"])):
            name = posixpath.basename(str(e["name"]).rstrip("/"))
            if name.startswith(".") and name.endswith(".part"):
                continue
            is_dir = e.get("type") == "directory"
            out.append(
                FileInfo(
                    path=f"{base}/{name}" if base else name,
                    is_dir=is_dir,
                    file_size=None if is_dir else int(e.get("size") or 0),
                )
            )
        return out

    def delete(self, rel: str) -> None:
        full = self._full(rel)
        if not self.fs.exists(full):
            raise ResourceDoesNotExist(f"Artifact '{rel}' does not exist")
        self.fs.rm(full, recursive=True)
