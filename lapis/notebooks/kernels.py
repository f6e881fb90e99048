"""Kernels from Lapis environments in every instance's JupyterLab
(``lapis environment register-kernel``).

Registering builds the environment version (uv, cached by content as for jobs), checks it
can run a kernel (it has ipykernel), and writes a Jupyter kernelspec for its Python into
the workspace's shared Jupyter path (``<home>/notebooks/jupyter/kernels/``), which every
instance's JupyterLab reads: the kernel appears in the launcher of every lab, running and
future, named ``<environment>:<version>``.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from lapis.environments.service import EnvironmentService
from lapis.errors import InvalidParameterValue


def jupyter_path(home: Path) -> Path:
    return home / "notebooks" / "jupyter"


def register_kernel(envs: EnvironmentService, home: Path, name: str, version: str,
                    display_name: str | None = None) -> dict[str, Any]:  # fmt: skip
    built = envs.build(name, version)
    if not built.python:
        raise InvalidParameterValue(
            f"environment {built.name}:{built.version} is image-only: it has no Python of its "
            "own to run a kernel (give it a conda file with ipykernel)"
        )
    probe = subprocess.run([built.python, "-c", "import ipykernel"], capture_output=True,
                           timeout=60)  # fmt: skip
    if probe.returncode != 0:
        raise InvalidParameterValue(
            f"environment {built.name}:{built.version} has no ipykernel, which a Jupyter kernel "
            "needs: add ipykernel to its conda file's pip list and register a new version"
        )
    kernel = "lapis-" + re.sub(r"[^a-z0-9_.-]", "-", f"{built.name}-{built.version}".lower())
    folder = jupyter_path(home) / "kernels" / kernel
    folder.mkdir(parents=True, exist_ok=True)
    shown = display_name or f"{built.name}:{built.version}"
    spec = {"argv": [built.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": shown, "language": "python",
            "metadata": {"lapis": {"environment": f"{built.name}:{built.version}"}}}  # fmt: skip
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1))
    return {"kernel": kernel, "display_name": shown, "environment": built.name,
            "version": built.version, "python": built.python}  # fmt: skip
