"""The compute pages in a real browser: create (name checked as you type), stop, start, delete."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from jobkit import HOLDING_SLOT, http_for, submit, wait, write_job
from studiokit import Studio

WAITER = """\
import pathlib, sys, time
deadline = time.monotonic() + 120  # never outlives a failed test by long
while not pathlib.Path(sys.argv[1]).exists() and time.monotonic() < deadline:
    time.sleep(0.1)
"""


def _state(studio: Studio, state: str, timeout: float = 30_000) -> None:
    studio.page.wait_for_selector(f"#compute-state[data-state={state}]", timeout=timeout)


def test_create_stop_start_delete_an_instance(studio: Studio, tmp_path: Path) -> None:
    server, page = studio.server, studio.page
    name = f"ci{uuid.uuid4().hex[:8]}"
    page.on("dialog", lambda d: d.accept())
    studio.go("/compute/_new")
    sizes = page.inner_text("fieldset.sizes")
    assert "Standard_DS1_v2" in sizes and "standardDSv2Family" in sizes and "of 24 cores" in sizes
    page.type("#name", "1bad")
    page.wait_for_selector("#name-check[data-valid=false]")
    assert "must start with a letter" in page.inner_text("#name-check")
    assert page.get_attribute("#name", "aria-invalid") == "true"
    studio.shot("compute-new-bad-name")
    page.fill("#name", "")
    page.type("#name", name)
    page.wait_for_selector("#name-check[data-valid=true]")
    assert "valid, free name" in page.inner_text("#name-check")
    page.check("#size-Standard_DS1_v2")
    page.fill("#idle_minutes", "30")
    page.click("#create-button")
    page.wait_for_url(f"**/compute/{name}")
    _state(studio, "Running")
    assert "Standard_DS1_v2" in page.inner_text("main") and "30 min" in page.inner_text("main")
    studio.shot("compute-running")

    # a job holds the instance (until the test creates the sentinel), so Stop shows
    # Stopping while the job finishes, then Stopped
    sentinel = tmp_path / "release"
    job_file = write_job(
        tmp_path,
        f"""\
        command: python wait.py {sentinel}
        code: src
        compute: azureml:{name}
        environment: system
        """,
        {"src/wait.py": WAITER},
    )
    job = submit(server, job_file)
    wait(server, job["name"], HOLDING_SLOT)
    studio.go(f"/compute/{name}")
    assert job["name"] in page.inner_text("#compute-jobs")
    page.click("#compute-state button:has-text('Stop')")
    _state(studio, "Stopping")
    studio.shot("compute-stopping")
    sentinel.write_text("")
    _state(studio, "Stopped")
    assert wait(server, job["name"])["status"] == "Completed"
    studio.shot("compute-stopped")
    page.click("#compute-state button:has-text('Start')")
    _state(studio, "Running")

    studio.go("/compute")
    row = page.locator(f"tr[data-compute={name}]")
    assert "Running" in row.inner_text() and "1 cores" in row.inner_text()
    assert "local" in page.inner_text("#compute-table")
    studio.shot("compute-list")
    row.locator("button:has-text('Stop')").click()  # from the list: the row updates itself
    page.wait_for_selector(f"tr[data-compute={name}] .chip:has-text('Stopped')")
    assert row.locator("button:has-text('Start')").count() == 1

    studio.go("/compute/_new")  # the name is taken now: the form says so, then the API does
    page.type("#name", name.upper())
    page.wait_for_selector("#name-check[data-valid=false]")
    assert "already exists" in page.inner_text("#name-check")
    page.check("#size-Standard_DS1_v2")
    page.click("#create-button")
    page.wait_for_selector("#create-error-message")
    assert "already exists" in page.inner_text("#create-error-message")
    studio.shot("compute-new-taken")

    studio.go(f"/compute/{name}")
    page.click("#compute-state button:has-text('Delete')")
    page.wait_for_url("**/compute")
    assert name not in page.inner_text("#compute-table")
    with http_for(server) as http:
        assert name not in [c["name"] for c in http.get("/api/v1/computes")["computes"]]


def test_compute_errors_are_readable(studio: Studio, lapis_server: Any) -> None:
    response = studio.go("/compute/nosuchthing")
    assert response.status == 404 and "does not exist" in studio.page.inner_text("[role=alert]")
    studio.go("/compute/local")
    assert "always running" in studio.page.inner_text("#compute-state")
    assert studio.page.locator("#compute-state button").count() == 0


@pytest.mark.xdist_group("ray-clusters")  # one Ray cluster at a time (see test_suite_groups)
def test_create_a_cluster_from_the_form(studio: Studio) -> None:
    """The same form makes a compute cluster: its page shows the scale and the head node."""
    page = studio.page
    name = f"cl{uuid.uuid4().hex[:8]}"
    page.on("dialog", lambda d: d.accept())
    studio.go("/compute/_new")
    page.fill("#name", name)
    page.check("#kind-cluster")
    page.check("#size-Standard_DS1_v2")
    page.fill("#min_instances", "0")
    page.fill("#max_instances", "2")
    page.fill("#idle_seconds", "30")
    page.click("#create-button")
    try:
        page.wait_for_url(f"**/compute/{name}")
        _state(studio, "Running", timeout=60_000)
        nodes = page.inner_text("#cluster-nodes")
        assert f"{name}-head" in nodes
        assert "0..2 nodes" in page.inner_text("#compute-state")
        studio.shot("compute-cluster")
    finally:
        with http_for(studio.server) as http:
            http.request("DELETE", f"/api/v1/computes/{name}")
