"""Pin every package of Lapis' curated environments: write ``<name>.lock`` beside each.

    .venv/bin/python scripts/lock_curated.py            # all of lapis/environments/curated
    .venv/bin/python scripts/lock_curated.py lapis-sklearn

Each curated YAML names its top-level packages with exact versions; uv resolves what
they pull in once, here, for every Python Lapis runs on (``--universal``, markers where
versions differ), and the server installs the lock instead of resolving again — so a
curated environment holds the same packages on every machine and every day, and
``lapis environment show`` lists them. Run it after changing a curated YAML and commit
the lock with it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from lapis.specs.environment_document import CURATED_DIR, load_curated

PYTHON_FLOOR = "3.11"  # Lapis' own floor: curated environments use the host's interpreter


def lock(name: str, requirements: tuple[str, ...]) -> Path:
    out = CURATED_DIR / f"{name}.lock"
    with tempfile.NamedTemporaryFile("w", suffix=".in", delete=False) as fh:
        fh.write("".join(f"{r}\n" for r in requirements))
    uv = Path(sys.executable).with_name("uv")
    subprocess.run(
        [
            *(str(uv), "pip", "compile", "--universal", "--python-version", PYTHON_FLOOR),
            *("--no-header", "--no-annotate", "--quiet", fh.name, "-o", str(out)),
        ],
        check=True,
    )
    Path(fh.name).unlink()
    body = out.read_text()
    out.write_text(
        f"# {name}: every package pinned, made by scripts/lock_curated.py (uv pip compile "
        f"--universal) from {name}.yml; do not edit by hand.\n{body}"
    )
    return out


def main(names: list[str]) -> int:
    for definition, _ in load_curated(locked=False):
        if names and definition.name not in names:
            continue
        assert definition.spec is not None, f"{definition.name} has nothing to install"
        path = lock(definition.name, definition.spec.requirements)
        count = sum(1 for line in path.read_text().splitlines() if line and line[0] != "#")
        print(f"{definition.name}: {count} pinned lines in {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
