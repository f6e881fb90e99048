"""Code snapshots: what a job runs is frozen at submission.

The ``code`` folder is walked honouring ``.amlignore`` (or, when there is none,
``.gitignore``), exactly one of them as Azure does; limits are Azure's (300 MB,
2,000 files) and breaking one names the biggest offenders so the user knows
what to ignore. The snapshot id is a hash of paths and contents, so submitting
unchanged code twice stores it once. The git commit and dirty flag, when the
folder is in a repository, are recorded for lineage.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import subprocess
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from lapis.errors import InvalidParameterValue, RequestTooLarge

MAX_BYTES = 300 * 1024 * 1024
MAX_FILES = 2000
ALWAYS_IGNORED = (".git/", "__pycache__/", ".ipynb_checkpoints/", ".venv/")


@dataclass(frozen=True)
class Snapshot:
    root: Path
    files: tuple[str, ...]  # posix paths relative to root, sorted
    total_bytes: int
    digest: str
    ignore_file: str | None
    git_commit: str | None = None
    git_dirty: bool | None = None
    sizes: dict[str, int] = field(default_factory=dict, compare=False)


class IgnoreRules:
    """The gitignore subset people use: globs, ``/``-anchored, ``dir/``, ``!`` negation."""

    def __init__(self, lines: list[str]) -> None:
        self.rules: list[tuple[bool, bool, bool, str]] = []  # negate, dir_only, anchored, glob
        for raw in lines:
            line = raw.rstrip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            line = line[1:] if negate else line
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            anchored = "/" in line
            self.rules.append((negate, dir_only, anchored, line.lstrip("/")))

    def ignored(self, rel: str, is_dir: bool) -> bool:
        verdict = False
        name = rel.rsplit("/", 1)[-1]
        for negate, dir_only, anchored, glob in self.rules:
            if dir_only and not is_dir:
                continue
            hit = fnmatch.fnmatch(rel, glob) if anchored else fnmatch.fnmatch(name, glob)
            if hit:
                verdict = not negate
        return verdict


def _ignore_rules(root: Path) -> tuple[IgnoreRules, str | None]:
    for candidate in (".amlignore", ".gitignore"):
        path = root / candidate
        if path.is_file():
            return IgnoreRules(path.read_text().splitlines()), candidate
    return IgnoreRules([]), None


def _git_state(root: Path) -> tuple[str | None, bool | None]:
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(dirty)


def take_snapshot(code: Path, max_bytes: int = MAX_BYTES, max_files: int = MAX_FILES) -> Snapshot:
    root = code.resolve()
    if not root.is_dir():
        raise InvalidParameterValue(f"code folder '{code}' does not exist or is not a folder")
    rules, ignore_file = _ignore_rules(root)
    always = IgnoreRules(list(ALWAYS_IGNORED))
    sizes: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if base == "." else f"{base}/"
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not always.ignored(prefix + d, True) and not rules.ignored(prefix + d, True)
        )
        for name in filenames:
            rel = prefix + name
            full = Path(dirpath) / name
            if rules.ignored(rel, False) or not full.is_file():
                continue
            sizes[rel] = full.stat().st_size
            if len(sizes) > max_files:
                raise InvalidParameterValue(
                    f"code folder '{code}' holds more than {max_files} files; list what the job "
                    f"does not need in {ignore_file or '.amlignore'}"
                )
    total = sum(sizes.values())
    if total > max_bytes:
        biggest = sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
        shown = ", ".join(f"{p} ({s / 2**20:.1f} MB)" for p, s in biggest)
        raise InvalidParameterValue(
            f"code folder '{code}' is {total / 2**20:.0f} MB, over the {max_bytes / 2**20:.0f} MB "
            f"limit; the largest files are {shown} — add them to {ignore_file or '.amlignore'}"
        )
    commit, dirty = _git_state(root)
    return Snapshot(
        root,
        tuple(sorted(sizes)),
        total,
        digest_files(root, sizes),
        ignore_file,
        commit,
        dirty,
        sizes,
    )


def digest_files(root: Path, rels: Iterable[str]) -> str:
    """Content hash of a set of files: their sorted relative paths and bytes."""
    digest = hashlib.sha256()
    for rel in sorted(rels):
        digest.update(rel.encode() + b"\0")
        with open(root / rel, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def pack(snapshot: Snapshot) -> bytes:
    """The snapshot's files as a gzip'd tar, for upload to the server."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=3) as tar:
        for rel in snapshot.files:
            tar.add(snapshot.root / rel, arcname=rel, recursive=False)
    return buf.getvalue()


_HEX64 = frozenset("0123456789abcdef")


def check_digest(digest: object) -> str:
    """A snapshot digest is 64 lowercase hex characters and nothing else: it becomes a
    folder name under the snapshot store, so ``/usr/share`` or ``../x`` never reach a path."""
    if not isinstance(digest, str) or len(digest) != 64 or not _HEX64.issuperset(digest):
        shown = repr(digest)[:80]
        raise InvalidParameterValue(f"{shown} is not a snapshot digest (64 hex characters)")
    return digest


def unpack(
    source: IO[bytes], target: Path, max_bytes: int = MAX_BYTES, max_files: int = MAX_FILES
) -> list[str]:
    """Extract an uploaded snapshot; only regular files with clean relative names.

    The archive is read member by member and every byte written is counted, so a
    decompression bomb stops at the limit instead of filling the disk: the limits are
    the ones the client applies before packing (Azure's 300 MB / 2,000 files).
    """
    names: list[str] = []
    total = 0
    with tarfile.open(fileobj=source, mode="r:*") as tar:
        for member in tar:
            rel = PurePosixPath(member.name)
            if member.isdir():
                continue
            if not member.isfile() or rel.is_absolute() or ".." in rel.parts:
                raise InvalidParameterValue(
                    f"snapshot entry '{member.name}' is not a plain file inside the snapshot"
                )
            if len(names) >= max_files:
                raise RequestTooLarge(
                    f"snapshot holds more than {max_files} files; the limit is {max_files}"
                )
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(member)
            assert src is not None
            with open(dest, "wb") as out:
                while chunk := src.read(1 << 20):
                    total += len(chunk)
                    if total > max_bytes:
                        raise RequestTooLarge(
                            f"snapshot expands to more than {max_bytes // 2**20} MB (stopped at "
                            f"{total // 2**20} MB, file {len(names) + 1}); the limit is "
                            f"{max_bytes // 2**20} MB"
                        )
                    out.write(chunk)
            os.chmod(dest, 0o755 if member.mode & 0o100 else 0o644)
            names.append(rel.as_posix())
    return names
