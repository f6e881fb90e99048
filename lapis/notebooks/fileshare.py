"""The workspace's file share: notebooks and files, kept by the server, seen from every
compute instance.

Azure keeps a workspace's notebooks on a file share mounted as every instance's working
folder, with a ``Users/<name>/`` folder per person. Here the share is a folder in the
workspace home (``<home>/fileshare``), so the studio's Notebooks page, ``lapis file``,
and each instance's JupyterLab and SSH sessions all read and write the same files —
a notebook saved on one instance is there on the next.

Who may reach what (``FileShare.check``):
- reading any user's folder needs ``workspaces/notebooks/storage/read``: the share is
  how a team shares notebooks, as on Azure;
- writing and deleting need ``…/write`` or ``…/delete`` *and*, outside one's own
  ``Users/<name>/``, the Owner's reach (``workspaces/notebooks/storage/manage/action``):
  a colleague may read your notebook, not change it;
- every path is resolved and must stay inside the share (no ``..``, no absolute path, no
  symbolic link followed out); the share's root and ``Users/`` are never deleted.

Writes are atomic (a temporary file renamed into place), so a reader — JupyterLab on
another instance — never sees half a notebook.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lapis.entities.auth import Principal
from lapis.entities.files import USERS, user_folder_name
from lapis.errors import (
    InvalidParameterValue,
    InvalidState,
    PermissionDenied,
    RequestTooLarge,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)

READ = "workspaces/notebooks/storage/read"
WRITE = "workspaces/notebooks/storage/write"
DELETE = "workspaces/notebooks/storage/delete"
MANAGE = "workspaces/notebooks/storage/manage/action"  # others' folders (Owners)
MAX_FILE_BYTES = 2 * 1024**3  # one file through the API; bigger data belongs on a datastore


@dataclass(frozen=True)
class Entry:
    name: str
    path: str  # relative to the share, posix
    type: str  # "file" | "folder"
    size: int
    modified: int  # epoch ms


class FileShare:
    def __init__(self, root: Path, can: Callable[[Principal, str], bool]) -> None:
        self.root = root
        self.can = can
        (root / USERS).mkdir(parents=True, exist_ok=True, mode=0o700)

    # --- paths ---------------------------------------------------------------------
    def user_root(self, username: str) -> Path:
        """``Users/<name>/``, made on first use."""
        folder = self.root / USERS / user_folder_name(username)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def resolve(self, rel: str) -> tuple[str, Path]:
        """``(clean relative path, absolute path)``, or a 400 naming the problem."""
        text = (rel or "").replace("\\", "/").strip()
        if "\x00" in text:
            raise InvalidParameterValue("path: contains a NUL character", field="path")
        pure = PurePosixPath(text)
        if pure.is_absolute() or ".." in pure.parts:
            raise InvalidParameterValue(
                f"path: '{rel}' must be relative to the file share, without '..'",
                field="path",
            )
        clean = "/".join(p for p in pure.parts if p not in ("", "."))
        where = self.root / clean if clean else self.root
        real = where.resolve()
        root = self.root.resolve()
        if real != root and root not in real.parents:  # a link pointing out of the share
            raise PermissionDenied(f"path: '{clean}' leads outside the file share")
        return clean, where

    def check(self, principal: Principal | None, clean: str, action: str) -> None:
        """Refuse what ``principal`` may not do at ``clean`` (see the module docstring)."""
        if principal is None:
            return  # the server itself
        if not self.can(principal, action):
            raise PermissionDenied(f"your role does not allow {action}")
        if action == READ:
            return
        own = f"{USERS}/{user_folder_name(principal.name)}"
        if (clean == own or clean.startswith(own + "/")) or self.can(principal, MANAGE):
            return
        raise PermissionDenied(
            f"'{clean or '/'}' is not in your folder ({own}/): you may read others' files, "
            "not change them"
        )

    # --- reading -------------------------------------------------------------------
    def list(self, principal: Principal | None, rel: str = "") -> list[Entry]:
        clean, where = self.resolve(rel)
        self.check(principal, clean, READ)
        if principal is not None:
            self.user_root(principal.name)  # everyone finds their own folder there
        if not where.exists():
            raise ResourceDoesNotExist(f"'{clean}' does not exist in the file share")
        if not where.is_dir():
            return [self._entry(clean, where)]
        out = []
        for child in sorted(where.iterdir(), key=lambda p: (not p.is_dir(), p.name.lower())):
            if child.name.startswith(".lapis-"):  # a write in progress
                continue
            out.append(self._entry(f"{clean}/{child.name}" if clean else child.name, child))
        return out

    @staticmethod
    def _entry(rel: str, path: Path) -> Entry:
        st = path.lstat()
        kind = "folder" if path.is_dir() and not path.is_symlink() else "file"
        return Entry(PurePosixPath(rel).name or "/", rel, kind,
                     st.st_size if kind == "file" else 0, int(st.st_mtime * 1000))  # fmt: skip

    def open_file(self, principal: Principal | None, rel: str) -> tuple[str, Path]:
        clean, where = self.resolve(rel)
        self.check(principal, clean, READ)
        if not where.is_file():
            what = "a folder" if where.is_dir() else "not there"
            raise ResourceDoesNotExist(f"'{clean}' is {what}: only files are downloaded")
        return clean, where

    # --- writing -------------------------------------------------------------------
    async def write(
        self,
        principal: Principal | None,
        rel: str,
        chunks: AsyncIterator[bytes],
        overwrite: bool = True,
    ) -> Entry:
        """Stream a file into place: a temporary file beside it, renamed when complete."""
        clean, where = self._writable(principal, rel)
        if where.is_dir():
            raise InvalidState(f"'{clean}' is a folder")
        if where.exists() and not overwrite:
            raise ResourceAlreadyExists(f"'{clean}' exists (overwrite it, or choose a name)")
        where.parent.mkdir(parents=True, exist_ok=True)
        tmp = where.parent / f".lapis-{uuid.uuid4().hex}"
        size = 0
        try:
            with open(tmp, "wb") as fh:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > MAX_FILE_BYTES:
                        raise RequestTooLarge(
                            f"'{clean}' is over {MAX_FILE_BYTES // 1024**3} GB: keep data "
                            "that large on a datastore"
                        )
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, where)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return self._entry(clean, where)

    def mkdir(self, principal: Principal | None, rel: str) -> Entry:
        clean, where = self._writable(principal, rel)
        if where.exists():
            raise ResourceAlreadyExists(f"'{clean}' exists")
        where.mkdir(parents=True)
        return self._entry(clean, where)

    def rename(self, principal: Principal | None, rel: str, to: str) -> Entry:
        clean, where = self._writable(principal, rel, DELETE, inside=True)
        target, dest = self._writable(principal, to)
        if not where.exists():
            raise ResourceDoesNotExist(f"'{clean}' does not exist in the file share")
        if dest.exists():
            raise ResourceAlreadyExists(f"'{target}' exists")
        if dest == where or where in dest.parents:
            raise InvalidParameterValue(f"'{clean}' cannot move into itself")
        dest.parent.mkdir(parents=True, exist_ok=True)
        where.rename(dest)
        return self._entry(target, dest)

    def delete(self, principal: Principal | None, rel: str) -> None:
        clean, where = self._writable(principal, rel, DELETE, inside=True)
        if not where.exists() and not where.is_symlink():
            raise ResourceDoesNotExist(f"'{clean}' does not exist in the file share")
        if where.is_dir() and not where.is_symlink():
            shutil.rmtree(where)
        else:
            where.unlink()

    def _writable(
        self, principal: Principal | None, rel: str, action: str = WRITE, inside: bool = False
    ) -> tuple[str, Path]:
        """``inside``: a path below a user's folder (their folder itself stays)."""
        clean, where = self.resolve(rel)
        parts = clean.split("/") if clean else []
        if len(parts) < (3 if inside else 2) or parts[0] != USERS:
            raise PermissionDenied(
                f"'{clean or '/'}': files live in a user's folder (Users/<name>/...); "
                "the share's root, Users/ and each user's folder are fixed"
            )
        self.check(principal, clean, action)
        return clean, where
