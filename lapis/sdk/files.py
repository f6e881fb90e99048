"""The workspace's file share from the client (``lapis file``): list, upload and download
files or whole folders, make folders, rename, delete. A path without ``Users/`` in front
is taken inside one's own folder (``Users/<me>/``), as the studio's Notebooks page opens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from lapis.entities.files import USERS, user_folder_name
from lapis.errors import InvalidParameterValue
from lapis.sdk.connection import LapisHTTP

CHUNK = 1024 * 1024


def remote(http: LapisHTTP, path: str | None) -> str:
    """``Users/...`` as given; anything else inside ``Users/<me>/``."""
    text = (path or "").strip().lstrip("/")
    if text == "Users" or text.startswith("Users/"):
        return text
    me = str(http.get("/api/v1/whoami")["name"])
    mine = f"{USERS}/{user_folder_name(me)}"
    return f"{mine}/{text}" if text else mine


def listing(http: LapisHTTP, path: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = http.get("/api/v1/files", path=remote(http, path))
    return found


def _chunks(local: Path) -> Iterator[bytes]:
    with open(local, "rb") as fh:
        while block := fh.read(CHUNK):
            yield block


def upload(http: LapisHTTP, local: Path, target: str | None, overwrite: bool = True
           ) -> list[dict[str, Any]]:  # fmt: skip
    """A file to ``target`` (a folder there keeps its name), or a folder's files below
    ``target/<folder name>/``; the entries written."""
    local = local.expanduser()
    if not local.exists():
        raise InvalidParameterValue(f"'{local}' does not exist here")
    base = remote(http, target)
    if local.is_file():
        files = [(local, f"{base}/{local.name}" if _is_folder(http, base) else base)]
    else:
        root = f"{base}/{local.name}"
        inside = [p for p in sorted(local.rglob("*")) if p.is_file() and not p.is_symlink()]
        files = [(p, f"{root}/{p.relative_to(local).as_posix()}") for p in inside]
    written = []
    for src, dest in files:
        resp = http.request("PUT", "/api/v1/files/content", content=_chunks(src),
                            params={"path": dest, "overwrite": str(overwrite).lower()})  # fmt: skip
        written.append(resp.json())
    return written


def _is_folder(http: LapisHTTP, path: str) -> bool:
    from lapis.errors import ResourceDoesNotExist

    try:
        entries = http.get("/api/v1/files", path=path)["entries"]
    except ResourceDoesNotExist:
        return False
    return not (len(entries) == 1 and entries[0]["path"] == path and entries[0]["type"] == "file")


def download(http: LapisHTTP, path: str, into: Path) -> list[Path]:
    """A file into ``into``, or a folder as ``into/<folder name>/...``; the files written."""
    source = remote(http, path)
    entries = http.get("/api/v1/files", path=source)["entries"]
    if len(entries) == 1 and entries[0]["path"] == source and entries[0]["type"] == "file":
        return [_fetch(http, source, into / PurePosixPath(source).name)]
    written: list[Path] = []
    top = into / PurePosixPath(source).name
    top.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        rel = PurePosixPath(entry["path"]).name
        if entry["type"] == "folder":
            written += download(http, entry["path"], top)
        else:
            written.append(_fetch(http, entry["path"], top / rel))
    return written


def _fetch(http: LapisHTTP, source: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with http.stream("GET", "/api/v1/files/content", params={"path": source}) as resp,\
            open(dest, "wb") as fh:  # fmt: skip
        for block in resp.iter_bytes(CHUNK):
            fh.write(block)
    return dest


def delete(http: LapisHTTP, path: str) -> str:
    target = remote(http, path)
    http.request("DELETE", "/api/v1/files", params={"path": target})
    return target


def mkdir(http: LapisHTTP, path: str) -> dict[str, Any]:
    made: dict[str, Any] = http.post("/api/v1/files/folders", {"path": remote(http, path)})
    return made


def rename(http: LapisHTTP, path: str, to: str) -> dict[str, Any]:
    moved: dict[str, Any] = http.post(
        "/api/v1/files/rename", {"path": remote(http, path), "to": remote(http, to)}
    )
    return moved
