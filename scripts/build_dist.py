"""Build Lapis' sdist and wheel (``make dist``) and check they hold what a pip install needs.

The studio's front-end libraries (htmx, uPlot) are not in git: ``make studio-assets``
fetches them from the npm registry into the package. A wheel built without them
would give users a studio without charts or live updates, so this refuses to build
until they are there, and checks the built files contain them — the wheel is built
from the sdist (uv's default), so both are checked.

    python scripts/build_dist.py [OUT_DIR]      (default: dist/)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = "lapis/server/studio/static/vendor"
NEEDED = (
    f"{VENDOR}/htmx.min.js",
    f"{VENDOR}/uPlot.iife.min.js",
    f"{VENDOR}/uPlot.min.css",
    "lapis/server/studio/templates/base.html",
    "lapis/server/studio/static/charts.js",
    "lapis/store/sql/migrations/env.py",
    "lapis/store/sql/migrations/versions/0001_initial_schema.py",
    "lapis/server/routers/mlflow/schemas.json",
    "lapis/environments/curated/lapis-sklearn.lock",
    "lapis/endpoints/runtime/scoring.py",
    "lapis/py.typed",
)


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        raise SystemExit("uv is needed to build (pip install uv)")
    return found


def build(out: Path) -> tuple[Path, Path]:
    missing = [p for p in NEEDED[:3] if not (ROOT / p).is_file()]
    if missing:
        raise SystemExit(
            f"the studio's assets are missing ({', '.join(missing)}): run `make studio-assets`"
        )
    out.mkdir(parents=True, exist_ok=True)
    for old in (*out.glob("lapis-*.whl"), *out.glob("lapis-*.tar.gz")):
        old.unlink()
    subprocess.run([_uv(), "build", "--quiet", "--out-dir", str(out)], cwd=ROOT, check=True)
    wheel = next(out.glob("lapis-*.whl"))
    sdist = next(out.glob("lapis-*.tar.gz"))
    with zipfile.ZipFile(wheel) as zf:
        in_wheel = set(zf.namelist())
    with tarfile.open(sdist) as tf:
        in_sdist = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    for what, names in (("wheel", in_wheel), ("sdist", in_sdist)):
        lacking = [p for p in NEEDED if p not in names]
        if lacking:
            raise SystemExit(f"the {what} lacks {', '.join(lacking)}")
    return wheel, sdist


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dist"
    wheel, sdist = build(out)
    for f in (wheel, sdist):
        print(f"{f}  ({f.stat().st_size / 1024:.0f} KiB)")
    print(f"install it with: pip install {wheel}")


if __name__ == "__main__":
    main()
