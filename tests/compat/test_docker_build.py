"""``environment: {build: {path, dockerfile_path}}`` (a Docker build context): built into
an image and run in a container where a Docker engine answers; refused in one line
where none does."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jobkit import get, lapis_cli, log_text, submit, wait

FILES = Path(__file__).parent / "files" / "jobs"


def _engine() -> str | None:
    """Why the engine path cannot be tested here, or None."""
    if shutil.which("docker") is None:
        return "no docker command"
    done = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or ["docker info failed"])[0]
    if shutil.which("busybox") is None:
        return "no static busybox to build the test image from (apt-get install busybox-static)"
    return None


@pytest.fixture
def no_engine(tmp_path: Path, server_type: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A server whose Docker client reaches no engine (as on a machine without one)."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    server = server_type(home=tmp_path / "home")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_without_an_engine_the_job_is_refused_in_one_line(no_engine: Any) -> None:
    done = lapis_cli(no_engine, "job", "create", "-f", str(FILES / "docker-build.yml"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "environment.build: is a Docker build context, which needs a Docker engine" in line
    assert "none answers" in line and "conda_file" in line


def _job(tmp_path: Path) -> Path:
    folder = tmp_path / "jobs"
    shutil.copytree(FILES / "docker-local", folder / "docker-local")
    shutil.copy(shutil.which("busybox") or "", folder / "docker-local" / "busybox")
    text = (FILES / "docker-local.yml").read_text()
    (folder / "job.yml").write_text(text)
    return folder / "job.yml"


def test_a_build_context_runs_in_a_container(lapis_server: Any, tmp_path: Path) -> None:
    why = _engine()
    if why is not None:
        pytest.skip(f"NOT TESTED: the Docker engine path needs a Docker engine ({why})")
    job_file = _job(tmp_path)
    first = wait(lapis_server, submit(lapis_server, job_file)["name"], timeout=300)
    log = log_text(lapis_server, first["name"])
    assert first["status"] == "Completed", (first.get("status_reason"), log)
    assert f"tracking at {lapis_server.url}" in log and '"status":"ok"' in log
    assert first["environment"].startswith("docker ")
    out = tmp_path / "dl"
    done = lapis_cli(lapis_server, "job", "download", first["name"], "--output-name", "result",
                     "--download-path", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "named-outputs" / "result" / "result.txt").read_text() == (
        "hello from a container\n"
    )
    # the same context again: the image is reused, not rebuilt
    second = wait(lapis_server, submit(lapis_server, job_file)["name"], timeout=300)
    assert second["status"] == "Completed"
    events = get(lapis_server, second["name"])["events"]
    assert not any("building image" in str(e.get("reason") or "") for e in events)


def test_canceling_a_container_job_removes_the_container(lapis_server: Any, tmp_path: Path) -> None:
    why = _engine()
    if why is not None:
        pytest.skip(f"NOT TESTED: the Docker engine path needs a Docker engine ({why})")
    job_file = _job(tmp_path)
    job_file.write_text(
        job_file.read_text().replace('echo "in $(pwd)', 'echo started && sleep 120 && echo "in')
    )
    name = submit(lapis_server, job_file, [f"name=docker-cancel-{uuid.uuid4().hex[:6]}"])["name"]
    deadline = time.monotonic() + 120
    while "started" not in log_text(lapis_server, name):
        assert time.monotonic() < deadline, log_text(lapis_server, name)
        time.sleep(0.3)
    assert lapis_cli(lapis_server, "job", "cancel", name).returncode == 0
    assert wait(lapis_server, name, timeout=120)["status"] == "Canceled"
    left = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"name=lapis-job-{name}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert left.stdout.strip() == ""
