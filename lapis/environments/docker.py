"""Docker build-context environments (``build: {path, dockerfile_path}``), when an engine
answers.

Azure ML builds such an environment into an image and runs the job in a container.
Lapis does the same where a Docker engine is available to the server: the client
uploads the context folder (content-addressed, like a code snapshot), the job's
supervisor builds the image once per context (``lapis-env:<digest>``: a second
job with the same files reuses it) and runs the command in a container with the
job's folder mounted at the same path, the host's network (so the tracking URL
works unchanged) and the job's variables. Without an engine, submitting such a
job is refused in one line saying so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import lru_cache

IMAGE_PREFIX = "lapis-env"
_DOCKERFILE = re.compile(r"^[\w.\-/]+$")


def docker_cli() -> str | None:
    return shutil.which("docker")


@lru_cache(maxsize=1)
def _probe(cli: str) -> str | None:
    try:
        done = subprocess.run(
            [cli, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`docker info` did not answer: {exc}"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return lines[0] if lines else f"`docker info` exited with {done.returncode}"
    return None


def engine_problem() -> str | None:
    """Why no Docker engine can be used here (None when one answers)."""
    cli = docker_cli()
    if cli is None:
        return "no `docker` command is installed on the server"
    return _probe(cli)


def forget_probe() -> None:
    """Ask the engine again next time (after one was started, say)."""
    _probe.cache_clear()


def image_tag(context_digest: str, dockerfile: str) -> str:
    """One image per context and Dockerfile: the same files build once."""
    import hashlib

    key = hashlib.sha256(f"{context_digest}:{dockerfile}".encode()).hexdigest()[:24]
    return f"{IMAGE_PREFIX}:{key}"


def check_dockerfile(path: object) -> str:
    text = "Dockerfile" if path in (None, "") else str(path)
    if not _DOCKERFILE.match(text) or ".." in text.split("/") or text.startswith("/"):
        raise ValueError(
            f"dockerfile_path must be a relative path inside the context, got {path!r}"
        )
    return text


def container_name(job: str) -> str:
    return "lapis-job-" + re.sub(r"[^a-zA-Z0-9_.-]", "-", job)
