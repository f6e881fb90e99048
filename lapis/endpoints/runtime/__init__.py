"""Child programs that run inside users' environments, not in the server.

Each program is copied next to the user's code with its companion modules and run by
the user's interpreter, so every module here imports the standard library only (and,
where Lapis is installed, its sibling modules by their package name; where it is not,
by the ``lapis_<module>.py`` names they are shipped under) and keeps to syntax every
supported Python (3.8 and later) understands.
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).parent
# Each program and the modules it imports: shipped together as lapis_<module>.py.
SCORING = ("scoring", "scorer", "mlmodel")
BATCH = ("batch_driver", "batch_scoring", "mlmodel")


def shipped_names(program: tuple[str, ...]) -> list[str]:
    """The file names a program occupies in the folder it is shipped to."""
    return [f"lapis_{module}.py" for module in program]


def ship(program: tuple[str, ...], folder: Path) -> Path:
    """Copy ``program`` (its entry module first) into ``folder``; the entry file's path."""
    for module, name in zip(program, shipped_names(program)):
        shutil.copyfile(HERE / f"{module}.py", folder / name)
    return folder / shipped_names(program)[0]
