"""The Data page in a real browser: the workspace's datastores and one made from Azure's
file shape, its settings shown and its key nowhere on the page."""

from __future__ import annotations

import uuid
from pathlib import Path

from jobkit import http_for
from studiokit import Studio

FILES = Path(__file__).resolve().parents[1] / "compat" / "files" / "datastore"
KEY = "bGFwaXMtdGVzdC1hY2NvdW50LWtleS1ub3QtYS1yZWFsLW9uZQ=="


def test_datastores_are_listed_and_shown_without_their_key(studio: Studio) -> None:
    page = studio.page
    name = f"studio_blob_{uuid.uuid4().hex[:6]}"
    text = (FILES / "blob-key.yml").read_text().replace("training_blob", name)
    with http_for(studio.server) as http:
        http.post("/api/v1/datastores", {"yaml": text, "source": "blob-key.yml"})
    studio.go("/")
    page.click("nav >> text=Data")
    page.wait_for_selector("#datastores-table")
    table = page.inner_text("#datastores-table")
    assert "workspaceblobstore" in table and "default" in table and name in table, table
    row = page.locator(f"tr[data-datastore={name}]").inner_text()
    assert "azure_blob" in row and "account key" in row
    studio.shot("data")
    page.click(f"a:has-text('{name}')")
    page.wait_for_selector("#datastore-facts")
    facts = page.inner_text("#datastore-facts")
    assert "https://lapisteststore.blob.core.windows.net/training-data" in facts
    assert "kept sealed; never shown" in facts
    assert KEY not in page.content()
    studio.shot("datastore")
    missing = studio.go("/data/datastores/no_such_store")
    assert missing.status == 404 and "not found" in page.inner_text("[role=alert]")
