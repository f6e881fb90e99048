"""What a workstation's processes may reach: the same Landlock sandbox as jobs and
scoring instances (lapis/compute/sandbox.py). A kernel, a terminal, an SSH session or a
custom application runs as the server's own OS user, so without it a notebook could read
the workspace's credentials, database and other users' files. Each process is denied the
workspace home and a local artifact root, except its user's folder of the file share, its
own state folder and the environments; the shared Jupyter path (kernelspecs) is
read-only."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Confinement:
    deny: tuple[str, ...]
    allow: tuple[str, ...] = ()
    read_only: tuple[str, ...] = field(default=())

    def box(self, *own: Path) -> Any:
        """A fresh sandbox (each is entered by one child, then closed) reaching ``own``."""
        from lapis.compute import sandbox

        return sandbox.prepare(list(self.deny), [*self.allow, *map(str, own)],
                               list(self.read_only))  # fmt: skip


def spawn(confine: Confinement | None, own: tuple[Path, ...], argv: list[str],
          **popen: Any) -> Any:  # fmt: skip
    """``subprocess.Popen`` inside the confinement (or plainly, where it is switched off)."""
    from lapis.compute import sandbox

    return sandbox.spawn(confine.box(*own) if confine else None, argv, **popen)
