"""``pip install`` of the built wheel gives a working studio without npm: the wheel (built
from the sdist by scripts/build_dist.py, what ``make dist`` runs) is installed into a fresh
virtual environment, its server started from outside the checkout, and a run's page draws
its metric charts in Chromium from the wheel's own copy of the front-end libraries."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from studiokit import sign_in

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from build_dist import build  # noqa: E402

sys.path.remove(str(ROOT / "scripts"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the built wheel installed (dependencies from the
    package index, through uv's cache); its Python."""
    base = tmp_path_factory.mktemp("wheel")
    wheel, _ = build(base / "dist")
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"
    venv = base / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), str(wheel)],
        check=True,
        timeout=600,
    )
    return python


@pytest.fixture
def wheel_server(
    installed: Path, tmp_path: Path, server_type: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    monkeypatch.delenv("PYTHONPATH", raising=False)  # the wheel's lapis, not a checkout's
    server = server_type(home=tmp_path / "home", python=str(installed), cwd=tmp_path)
    try:
        yield server.start()
    finally:
        server.stop()


def test_the_installed_wheel_serves_a_studio_whose_charts_render(
    installed: Path, wheel_server: Any, browser: Any, tmp_path: Path
) -> None:
    where = subprocess.run(
        [str(installed), "-c", "import lapis; print(lapis.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(installed.parents[1])), where  # not the checkout's copy
    with wheel_server.client() as http:
        made = http.post("/api/v1/runs", json={"experiment_name": "from-the-wheel"}).json()
        now = int(time.time() * 1000)
        body = {"metrics": {"key": ["acc"] * 20, "value": [i / 20 for i in range(20)],
                            "step": list(range(20)), "timestamp": [now] * 20}}  # fmt: skip
        http.post(f"/api/v1/runs/{made['run_id']}/log", json=body).raise_for_status()
        vendor = http.get("/static/vendor/uPlot.iife.min.js")
        assert vendor.status_code == 200 and len(vendor.content) > 10_000
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        sign_in(page, wheel_server)
        page.goto(f"{wheel_server.url}/runs/{made['run_id']}")
        page.wait_for_selector("#run-charts .chart-box[data-key='acc'] canvas")
        assert "script assets are not built" not in page.inner_text("main")
    finally:
        context.close()
