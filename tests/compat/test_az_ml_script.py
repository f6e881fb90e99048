"""A shell script of ``az ml`` command lines, as Azure's samples write them, runs
through ``lapis``: the only change is a shell function that turns ``az ml X`` into
``lapis X``. It exercises ``--name/-n``, ``--endpoint``/``--endpoint-name``,
``--deployment-name``, ``--query`` with ``-o tsv``/``table``, ``get-credentials``'
``primaryKey``, ``--set``, ``--yes`` and ``--no-wait``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

FILES = Path(__file__).parent / "files"


def _run(
    server: Any, tmp_path: Path, script: str, endpoint: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run one of files/*.sh with `az` meaning `lapis` (a shim first on PATH)."""
    folder = tmp_path / "files"
    shutil.copytree(FILES, folder)
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "az").write_text(
        f'#!/usr/bin/env bash\n[ "$1" = ml ] && shift\nexec "{sys.executable}" -m lapis "$@"\n'
    )
    (shim / "az").chmod(0o755)
    env = {
        **os.environ,
        **server.env,
        "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}",
        "ENDPOINT_NAME": endpoint,
    }
    done = subprocess.run(
        ["bash", str(folder / script)], env=env, capture_output=True, text=True, timeout=300
    )
    return done, env


@pytest.mark.skipif(shutil.which("curl") is None, reason="NOT TESTED: the script needs curl")
def test_the_online_endpoint_script_runs_unchanged(lapis_server: Any, tmp_path: Path) -> None:
    endpoint = f"az-{uuid.uuid4().hex[:8]}"
    done, env = _run(lapis_server, tmp_path, "az-ml-style.sh", endpoint)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "endpoint state: Succeeded" in out
    assert f"/endpoints/{endpoint}" in done.stderr  # --web: the studio page
    assert out.count("4.75") == 3  # two `invoke`s and the curl call scored the sample
    assert "traffic to folder: 100" in out
    assert "description: scores the sample" in out and "team: ml" in out  # --set
    assert "\nfolder\n" in out  # online-deployment list --query "[].name" -o tsv
    shown = subprocess.run(
        [sys.executable, "-m", "lapis", "online-endpoint", "show", "-n", endpoint],
        env=env,
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 1 and "does not exist" in shown.stderr  # deleted at the end


@pytest.mark.skipif(shutil.which("bash") is None, reason="NOT TESTED: the script needs bash")
def test_the_batch_scoring_script_runs_unchanged(lapis_server: Any, tmp_path: Path) -> None:
    endpoint = f"azb-{uuid.uuid4().hex[:8]}"
    done, _ = _run(lapis_server, tmp_path, "az-ml-batch.sh", endpoint)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    job = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("job: "))
    assert "tripler-settings" in out  # the default deployment, --query defaults.deployment_name
    assert "status: Completed" in out
    assert f"\n{job}\n" in out  # batch-deployment list-jobs --query "[].name" -o tsv
    assert sorted(line for line in out.splitlines() if re.fullmatch(r"n\d\.txt,\d+", line)) == [
        "n1.txt,3",
        "n2.txt,6",
        "n3.txt,9",
    ]
    assert f"/batch-endpoints/{endpoint}" in done.stderr and f"/jobs/{job}" in done.stderr
