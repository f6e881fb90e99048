"""Compute clusters in tests: one made and deleted around a test, waits that say where a
slow job was, and the cluster's nodes as the API lists them."""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jobkit import get, lapis_cli, log_text, wait

FINAL = {"Completed", "Failed", "Canceled"}
FILES = Path(__file__).resolve().parent / "compat" / "files" / "compute"


@pytest.fixture(scope="module", name="lapis_server")
def one_store(sqlite_server: Any) -> Any:
    """``lapis_server`` on SQLite, shared with the module's ``sqlite_server`` users (the
    default store already; importing this keeps one server per module where both are used)."""
    return sqlite_server


def json_cli(server: Any, *args: str) -> Any:
    done = lapis_cli(server, *args, "-o", "json")
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return json.loads(done.stdout) if done.stdout.strip() else None


def nodes(server: Any, name: str) -> list[dict[str, Any]]:
    with server.client() as http:
        nodes: list[dict[str, Any]] = http.get(f"/api/v1/computes/{name}").json()["nodes"]
    return nodes


def until(what: str, check: Any, timeout: float = 60, detail: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {what}" + (f": {detail()}" if detail else "")
            )
        time.sleep(0.3)


def started(server: Any, cluster: str, job: str) -> None:
    """Wait for a job's first log line; on a timeout say where the job and the nodes were."""

    def detail() -> str:
        info = get(server, job)
        logs = sorted((server.home / "clusters" / cluster.lower()).glob("*.log"))
        tails = {f.name: f.read_text(errors="replace")[-600:] for f in logs}
        up = nodes(server, cluster)
        return f"{info['status']} ({info.get('status_reason')}); nodes {up}; {tails}"

    until("the job to start", lambda: "started" in log_text(server, job), 120, detail)


def cancel_all(server: Any, cluster: str) -> None:
    with server.client() as http:
        jobs = http.get("/api/v1/jobs", params={"compute": cluster}).json()
    for job in jobs["jobs"]:
        if job["status"] not in FINAL:
            lapis_cli(server, "job", "cancel", job["name"])
            wait(server, job["name"], timeout=120)


@contextlib.contextmanager
def made_cluster(
    server: Any, tmp_path: Path, max_instances: int = 1, tier: str = "dedicated"
) -> Iterator[str]:
    """A cluster of the compat file's shape (0..max nodes, 2 s idle), deleted after; no
    Ray process of it may be left."""
    name = f"cl-x{uuid.uuid4().hex[:6]}"  # a letter after every "-" (Azure's rule)
    spec = tmp_path / f"{name}.yml"
    text = (FILES / "small-cluster.yml").read_text().replace("cpu-cluster", name)
    text = text.replace("tier: dedicated", f"tier: {tier}")
    spec.write_text(text.replace("max_instances: 1", f"max_instances: {max_instances}"))
    made = json_cli(server, "compute", "create", "-f", str(spec))
    assert made["type"] == "amlcompute"
    try:
        until("the head", lambda: json_cli(server, "compute", "show", "-n", name)["state"]
              == "Running")  # fmt: skip
        yield name
    finally:
        cancel_all(server, name)  # a failed test may leave a job: delete refuses then
        done = lapis_cli(server, "compute", "delete", "-n", name, "--yes")
        assert done.returncode == 0, done.stderr
    # every node of this cluster (they all name its own temp folder) is gone
    folder = server.home / "clusters" / name.lower()
    key = hashlib.sha256(str(folder).encode()).hexdigest()[:12]
    left = subprocess.run(["pgrep", "-f", f"lapis-ray-{key}"], capture_output=True, text=True)
    assert left.stdout.strip() == "", "Ray processes left after delete"


def studio_state(server: Any, cluster: str) -> str:
    """The studio compute page's live part (polled every 2 s), as a signed-in browser gets it."""
    import httpx

    with httpx.Client(base_url=server.url, timeout=30) as http:
        http.get("/signin")
        http.post("/signin", data={"token": server.token, "next": "/",
                                   "csrf": http.cookies.get("lapis_csrf")})  # fmt: skip
        page = http.get(f"/compute/{cluster}/state")
    assert page.status_code == 200, page.text[:300]
    return page.text
