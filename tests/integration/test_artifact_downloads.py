"""Artifact downloads are typed by file name, as MLflow's server types them, and are
always attachments with nosniff — an uploaded page never runs as part of the studio."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

BASE = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("report.html", "text/html"),
        ("chart.svg", "image/svg+xml"),
        ("model/MLmodel", "text/plain"),
        ("conda.yaml", "text/plain"),
        ("metrics.csv", "text/plain"),
        ("weights.bin", "application/octet-stream"),
        ("photo.png", "image/png"),
    ],
)
def test_downloads_carry_type_disposition_and_nosniff(
    inprocess_server: Any, name: str, kind: str
) -> None:
    with inprocess_server.client() as c:
        exp = c.post(
            "/api/2.0/mlflow/experiments/create", json={"name": f"dl-{uuid.uuid4().hex[:8]}"}
        ).json()["experiment_id"]
        run = c.post("/api/2.0/mlflow/runs/create", json={"experiment_id": exp}).json()["run"]
        root = run["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/").strip("/")
        path = f"{root}/{name}"
        assert c.put(f"{BASE}/{path}", content=b"<script>alert(1)</script>").status_code == 200
        got = c.get(f"{BASE}/{path}")
    assert got.status_code == 200 and got.content == b"<script>alert(1)</script>"
    assert got.headers["content-type"].split(";")[0] == kind
    base = name.rsplit("/", 1)[-1]
    assert got.headers["content-disposition"] == f"attachment; filename*=UTF-8''{base}"
    assert got.headers["x-content-type-options"] == "nosniff"
