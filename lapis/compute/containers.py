"""A job whose environment is a Docker build context: its image built, its command run
in a container (the supervisor's side of ``lapis.environments.docker``).

The container sees the job's folder at the same path as the host (so every input,
output and working-directory path in the job's variables is valid inside), runs
as the server's user (files it writes stay the workspace's), shares the host's
network (the tracking URL on loopback works unchanged) and is named after the job,
so a cancel or a supervisor's end removes it even when the ``docker run`` client
was killed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lapis.environments.docker import container_name


def _docker() -> str:
    return shutil.which("docker") or "docker"


def image_present(tag: str) -> bool:
    done = subprocess.run(
        [_docker(), "image", "inspect", tag], capture_output=True, timeout=60, check=False
    )
    return done.returncode == 0


def build(context: Path, dockerfile: str, tag: str, log: Callable[[str], object]) -> str | None:
    """Build ``tag`` from ``context`` (once: an image already there is reused); the error."""
    if image_present(tag):
        log(f"Reusing image {tag}")
        return None
    log(f"Building image {tag} from {context} ({dockerfile})")
    proc = subprocess.Popen(
        [
            _docker(),
            "build",
            "-t",
            tag,
            "-f",
            str(context / dockerfile),
            str(context),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "DOCKER_BUILDKIT": os.environ.get("DOCKER_BUILDKIT", "0")},
    )
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        log(line.rstrip("\n"))
        tail = [*tail, line.rstrip("\n")][-5:]
    if proc.wait() != 0:
        return "docker build failed: " + (" | ".join(t for t in tail if t.strip()) or "no output")
    return None


def run_argv(
    job: Mapping[str, Any], job_dir: Path, env: Mapping[str, str], command: str
) -> list[str]:
    """``docker run`` for the job: its folder mounted at the same path, its variables."""
    image = job["environment"]["image"]
    argv = [
        _docker(), "run", "--rm", "--init",
        "--name", container_name(str(job["name"])),
        "--network", "host",
        "--user", f"{os.getuid()}:{os.getgid()}",
        "-v", f"{job_dir}:{job_dir}",
        "-w", str(job_dir / "wd"),
        "-e", f"HOME={job_dir / 'tmp'}",
    ]  # fmt: skip
    for key in sorted(env):
        argv += ["-e", key]  # the value comes from the docker client's own environment
    return [*argv, image, "/bin/sh", "-c", command]


def passed_variables(job: Mapping[str, Any], job_dir: Path) -> dict[str, str]:
    """The variables the container gets: the job's (tracking, inputs, outputs, user's)."""
    tmp = str(job_dir / "tmp")
    return {**job["env"], "TMPDIR": tmp, "TMP": tmp, "TEMP": tmp}


def remove(job: Mapping[str, Any]) -> None:
    """Remove the job's container if it is still there (a kill of the client leaves it)."""
    subprocess.run(
        [_docker(), "rm", "-f", container_name(str(job["name"]))],
        capture_output=True,
        timeout=60,
        check=False,
    )
