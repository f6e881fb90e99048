"""A filesystem sandbox for user code, with Linux Landlock: the workspace stays out of reach.

Jobs and scoring instances run as the server's own OS user, so without a
sandbox a job could read ``credentials.json``, ``workspace.key``, ``lapis.db``
and every other job's folder. Landlock (Linux ≥ 5.13) lets an unprivileged
process give up filesystem access for itself and its children, which is what
the job's process does right before it runs the user's command:

- the **denied** trees (the workspace home; a local artifact root elsewhere)
  become unreachable, except the **allowed** subtrees inside them (the job's
  own folder, the environments folder);
- every other path keeps full access: Landlock only grants, so the rules name
  each sibling along the way from ``/`` down to a denied tree. The folders on
  that way (``/``, ``/home/me``…) can be listed but not written directly: a
  job cannot create a new top-level file in the folder holding the home (its
  temporary files go to ``$TMPDIR``, which Lapis points into the job's folder);
- with Landlock ABI 6 and later, signals to processes outside the sandbox (the
  server, other jobs) are refused too, and ptrace and ``/proc/<pid>/environ`` of
  outside processes always are.

Where the kernel has no Landlock, :func:`prepare` says so and the job runs
unsandboxed (the job's log says it). The module is stdlib only: the supervisor
imports it, and everything but the final three syscalls is done before ``fork``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import stat
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_CREATE, _ADD_RULE, _RESTRICT = 444, 445, 446  # same numbers on x86_64 and arm64
_VERSION_FLAG = 1
_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FILE_RIGHTS_V1 = EXECUTE | WRITE_FILE | READ_FILE
TRUNCATE, IOCTL_DEV = 1 << 14, 1 << 15
SCOPE_ABSTRACT_UNIX, SCOPE_SIGNAL = 1 << 0, 1 << 1


def _all_rights(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1: EXECUTE … MAKE_SYM
    if abi >= 2:
        rights |= 1 << 13  # REFER: no link or rename out of a denied tree
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def _file_rights(abi: int) -> int:
    rights = FILE_RIGHTS_V1
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI version, 0 when there is none (or not Linux)."""
    if platform.system() != "Linux":
        return 0
    try:
        version = _libc().syscall(_CREATE, None, ctypes.c_size_t(0), _VERSION_FLAG)
    except (AttributeError, OSError):
        return 0
    return max(0, int(version))


@dataclass
class Sandbox:
    """The rules, opened before fork; :meth:`enter` runs in the child, just before exec."""

    abi: int
    rules: list[tuple[int, int]] = field(default_factory=list)  # (O_PATH fd, rights)

    def enter(self) -> None:
        libc = _libc()
        attr = _RulesetAttr(_all_rights(self.abi), 0, 0)
        size = ctypes.sizeof(_RulesetAttr)
        if self.abi >= 6:
            attr.scoped = SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL
        else:
            size = 16 if self.abi >= 4 else 8
        ruleset = libc.syscall(_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), 0)
        if ruleset < 0:
            raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
        for fd, rights in self.rules:
            rule = _PathBeneath(rights, fd)
            if libc.syscall(_ADD_RULE, ruleset, _PATH_BENEATH, ctypes.byref(rule), 0) != 0:
                raise OSError(ctypes.get_errno(), "landlock_add_rule failed")
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(NO_NEW_PRIVS) failed")
        if libc.syscall(_RESTRICT, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
        os.close(ruleset)

    def close(self) -> None:
        for fd, _ in self.rules:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.rules.clear()


def _real(path: str) -> str:
    return os.path.realpath(path)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def prepare(
    deny: Iterable[str], allow: Iterable[str], read_only: Iterable[str] = ()
) -> Sandbox | None:
    """Rules keeping ``deny`` out of reach but for ``allow`` (and ``read_only``, which can
    be read and not changed); None without Landlock."""
    abi = abi_version()
    if abi <= 0:
        return None
    denied = sorted({_real(d) for d in deny if d})
    readable = sorted({_real(a) for a in read_only if a})
    allowed = sorted({_real(a) for a in allow if a})
    full, file_full = _all_rights(abi), _file_rights(abi)
    sandbox = Sandbox(abi)
    granted: set[str] = set()

    def grant(path: str, rights: int) -> None:
        """A rule for ``path`` itself, never for what a symbolic link there points to
        (``pytest-current`` → the folder holding the home would open it all up)."""
        if path in granted or os.path.islink(path):
            return
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
            mode = os.fstat(fd).st_mode
        except OSError:
            return
        granted.add(path)
        sandbox.rules.append((fd, rights if stat.S_ISDIR(mode) else rights & file_full))

    ancestors: set[str] = set()
    for d in denied:
        parts = d.strip("/").split("/")
        ancestors.update("/" + "/".join(parts[:i]) for i in range(len(parts)))
    for a in allowed + readable:  # ancestors of allowed folders inside a denied tree, too
        if any(_inside(a, d) for d in denied):
            parts = a.strip("/").split("/")
            ancestors.update(
                p
                for p in ("/" + "/".join(parts[:i]) for i in range(len(parts)))
                if any(_inside(p, d) for d in denied) or p in ancestors
            )
    for folder in sorted(ancestors):
        grant(folder, READ_DIR)  # listable; writes only in granted subtrees
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for name in entries:
            path = os.path.join(folder, name)
            if path in ancestors or any(_inside(path, d) for d in denied):
                continue
            grant(path, full)
    for a in allowed:
        grant(a, full)
    for r in readable:
        grant(r, READ_FILE | READ_DIR)
    return sandbox


def spawn(box: Sandbox | None, argv: list[str], **popen: Any) -> subprocess.Popen[bytes]:
    """Start ``argv`` inside ``box`` (entered in the child, right before exec), then close
    the rule descriptors in the parent; without a box, a plain start."""
    try:
        return subprocess.Popen(argv, preexec_fn=box.enter if box else None, **popen)
    finally:
        if box is not None:
            box.close()
