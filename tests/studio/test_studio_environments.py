"""The environments pages in a real browser: curated and registered ones, spec, builds."""

from __future__ import annotations

import uuid

from jobkit import http_for
from studiokit import Studio

ENV_YAML = """\
name: {name}
description: pandas for the studio test
image: python:3.12-slim
conda_file:
  name: demo
  channels: [conda-forge]
  dependencies:
    - python=3.12
    - pip
    - pip:
        - pandas==2.2.2
"""


def test_curated_and_registered_environments(studio: Studio) -> None:
    page = studio.page
    name = f"studio-env-{uuid.uuid4().hex[:6]}"
    with http_for(studio.server) as http:
        http.post("/api/v1/environments", {"yaml": ENV_YAML.format(name=name), "source": "env.yml"})
        http.post("/api/v1/environments", {"doc": {"name": name, "image": "python:3.11"}})
    studio.go("/environments")
    table = page.inner_text("#environments-table")
    for expected in ("lapis-minimal", "lapis-sklearn", "curated", name):
        assert expected in table, table
    row = page.locator(f"tr[data-env={name}]").inner_text()
    assert "2" in row and "system interpreter" in row  # latest is the image-only version 2
    studio.shot("environments")

    studio.go(f"/environments/{name}?version=1")
    main = page.inner_text("main")
    assert "pandas==2.2.2" in page.inner_text("#conda-file") and "python:3.12-slim" in main
    assert "Not built" in page.inner_text("#env-build")
    versions = page.inner_text("#versions-table")
    assert "1" in versions and "2" in versions
    page.click("#env-build button:has-text('Show build log')")
    page.wait_for_selector("#env-log p")
    assert "has not been built" in page.inner_text("#env-log")
    studio.shot("environment-detail")

    studio.go(f"/environments/{name}")  # version 2: image only, nothing to build
    assert "No build needed" in page.inner_text("#env-build")
    assert page.locator("#env-build button:has-text('Build')").count() == 0

    studio.go("/environments/lapis-minimal")
    assert "mlflow-skinny" in page.inner_text("main") and "curated" in page.inner_text("main")
    studio.shot("environment-curated")
    response = studio.go("/environments/no-such-env")
    assert response.status == 404 and "does not exist" in page.inner_text("[role=alert]")


def test_build_button_shows_the_outcome_and_log(studio: Studio) -> None:
    """A conda-only package fails the build at once (no network needed): Failed, with the log."""
    page = studio.page
    name = f"studio-bad-{uuid.uuid4().hex[:6]}"
    doc = {"name": name, "conda_file": {"dependencies": ["r-base=4.3", "pip", {"pip": ["six"]}]}}
    with http_for(studio.server) as http:
        http.post("/api/v1/environments", {"doc": doc})
    studio.go(f"/environments/{name}")
    assert "Not built" in page.inner_text("#env-build")
    page.click("#env-build button:has-text('Build')")
    page.wait_for_selector("#env-build[data-build=Failed]", timeout=30_000)
    assert "r-base" in page.inner_text("#env-build")
    page.click("#env-build button:has-text('Show build log')")
    page.wait_for_selector("#env-log-text")
    assert "no PyPI equivalent" in page.inner_text("#env-log-text")
    studio.shot("environment-build-failed")
