"""Helpers for job tests: submit a YAML job to a real server and watch it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

from lapis.sdk import jobs as sdk_jobs
from lapis.sdk.connection import LapisHTTP

FINAL = {"Completed", "Failed", "Canceled"}
HOLDING_SLOT = {"Preparing", "Provisioning", "Starting", "Running", "Finalizing", "CancelRequested"}


def run_coroutine(coro: Any) -> Any:
    """``asyncio.run`` in a thread of its own: this worker's main thread may hold a running
    loop (Playwright's sync API keeps one there while a studio test's browser is up)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def http_for(server: Any) -> LapisHTTP:
    return LapisHTTP(server.url, server.token)


def write_job(folder: Path, yaml_text: str, files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for rel, content in (files or {}).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content))
    job = folder / "job.yml"
    job.write_text(textwrap.dedent(yaml_text))
    return job


def submit(server: Any, job_file: Path, overrides: list[str] | None = None) -> dict[str, Any]:
    with http_for(server) as http:
        return sdk_jobs.submit_file(http, job_file, overrides)


def get(server: Any, name: str) -> dict[str, Any]:
    with http_for(server) as http:
        job: dict[str, Any] = http.get(f"/api/v1/jobs/{name}")
        return job


def wait(server: Any, name: str, statuses: set[str] = FINAL, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = get(server, name)
        if job["status"] in statuses:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {name} still {job['status']} ({job['status_reason']})")
        time.sleep(0.1)


def log_text(server: Any, name: str) -> str:
    with http_for(server) as http:
        return str(http.get(f"/api/v1/jobs/{name}/logs")["data"])


def lapis_cli(server: Any, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **server.env}
    return subprocess.run(
        [sys.executable, "-m", "lapis", *args], capture_output=True, text=True, env=env,
        timeout=timeout,
    )  # fmt: skip


def create_instance(server: Any, size: str = "Standard_DS1_v2") -> str:
    name = f"ci-q{uuid.uuid4().hex[:8]}"
    with http_for(server) as http:
        http.post("/api/v1/computes", {"name": name, "type": "computeinstance", "size": size})
        deadline = time.monotonic() + 15
        while http.get(f"/api/v1/computes/{name}")["state"] != "Running":
            assert time.monotonic() < deadline, "instance did not reach Running"
            time.sleep(0.1)
    return name


def batch_predictions(
    server: Any, job: str, target: Path, output: str = "score", file: str = "predictions.csv"
) -> list[str]:
    """A batch job's predictions file, downloaded with `lapis job download` as a user would."""
    done = lapis_cli(
        server, "job", "download", job, "--output-name", output, "--download-path", str(target)
    )
    assert done.returncode == 0, done.stderr
    return (target / "named-outputs" / output / file).read_text().splitlines()
