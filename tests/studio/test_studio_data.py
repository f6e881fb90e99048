"""The Data page in a real browser: the workspace's datastores and one made from Azure's
file shape, its settings shown and its key nowhere on the page."""

from __future__ import annotations

import uuid
from pathlib import Path

from jobkit import http_for
from storagekit import (
    ACCOUNT,
    ACCOUNT_KEY,
    azurite_server,  # noqa: F401  (a fixture)
)
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


def test_a_datastores_folders_are_browsed_on_azurite(studio: Studio, azurite: str) -> None:
    import adlfs

    container = f"studio-{uuid.uuid4().hex[:6]}"
    conn = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={azurite};")  # fmt: skip
    fs = adlfs.AzureBlobFileSystem(connection_string=conn)
    fs.mkdir(container)
    fs.pipe(f"{container}/images/cat.png", b"0" * 1234)
    fs.pipe(f"{container}/labels.csv", b"file,label\n")
    name = f"studio_az_{uuid.uuid4().hex[:6]}"
    with http_for(studio.server) as http:
        http.post("/api/v1/datastores", {
            "name": name, "type": "azure_blob", "account_name": ACCOUNT,
            "container_name": container, "account_url": azurite,
            "credentials": {"account_key": ACCOUNT_KEY},
        })  # fmt: skip
        wrong = f"{name}_wrong"
        http.post("/api/v1/datastores", {
            "name": wrong, "type": "azure_blob", "account_name": ACCOUNT,
            "container_name": container, "account_url": azurite,
            "credentials": {"account_key": ACCOUNT_KEY[:-8] + "AAAAAAA="},
        })  # fmt: skip
    page = studio.page
    studio.go(f"/data/datastores/{name}")
    page.wait_for_selector("#datastore-files")
    listing = page.inner_text("#datastore-files")
    assert "images/" in listing and "labels.csv" in listing, listing
    page.click("#datastore-files a:has-text('images/')")
    page.wait_for_selector("#datastore-files >> text=cat.png")
    assert "1,234" in page.inner_text("#datastore-files")
    studio.shot("datastore-files")
    studio.go(f"/data/datastores/{wrong}")
    page.wait_for_selector("#datastore-problem")
    assert "AuthorizationFailure" in page.inner_text("#datastore-problem")


def test_data_assets_and_their_versions(studio: Studio, tmp_path: Path) -> None:
    from jobkit import lapis_cli

    name = f"studio-heart-{uuid.uuid4().hex[:6]}"
    (tmp_path / "heart").mkdir()
    (tmp_path / "heart" / "heart.csv").write_text("age\n63\n")
    for _ in range(2):
        made = lapis_cli(studio.server, "data", "create", "--name", name, "--path",
                         str(tmp_path / "heart"))  # fmt: skip
        assert made.returncode == 0, made.stderr
    page = studio.page
    studio.go("/data")
    row = page.locator(f"tr[data-asset={name}]").inner_text()
    assert "2" in row and "uri_folder" in row and "LocalUpload" in row, row
    page.click(f"a:has-text('{name}')")
    page.wait_for_selector("#data-versions")
    versions = page.inner_text("#data-versions")
    assert "1" in versions and "2" in versions and "admin" in versions
    studio.shot("data-asset")


def test_a_job_reading_an_asset_shows_lineage_both_ways(studio: Studio, tmp_path: Path) -> None:
    from jobkit import lapis_cli, submit, wait, write_job

    name = f"studio-lineage-{uuid.uuid4().hex[:6]}"
    (tmp_path / "iris").mkdir()
    (tmp_path / "iris" / "iris.csv").write_text("sepal\n5.1\n")
    made = lapis_cli(studio.server, "data", "create", "--name", name, "--path",
                     str(tmp_path / "iris"))  # fmt: skip
    assert made.returncode == 0, made.stderr
    job_file = write_job(tmp_path / "job", f"""
        command: ls ${{{{inputs.iris}}}}
        inputs:
          iris:
            path: azureml:{name}@latest
            mode: download
        environment: system
        compute: local
        """)  # fmt: skip
    job = submit(studio.server, job_file)
    assert wait(studio.server, job["name"], timeout=120)["status"] == "Completed"
    page = studio.page
    studio.go(f"/data/assets/{name}")
    page.wait_for_selector("#data-preview")
    preview = page.inner_text("#data-preview")
    assert "sepal" in preview and "number" in preview and "5.1" in preview, preview
    readers = page.inner_text("#data-readers")
    assert job["name"] in readers and "iris" in readers, readers
    page.click(f"#data-readers a:has-text('{job['name']}')")
    page.wait_for_selector("#io-h")
    io = page.inner_text("section[aria-labelledby=io-h]")
    assert (
        f"{name}:1" in io and "download" in io and "azureml://datastores/workspaceblobstore" in io
    ), io
    studio.shot("job-data-input")


def test_a_model_output_is_registered_from_the_job_page(studio: Studio, tmp_path: Path) -> None:
    from jobkit import submit, wait, write_job

    job_file = write_job(tmp_path / "job", """
        command: echo weights > ${{outputs.model}}/weights.txt
        outputs:
          model:
            type: custom_model
        environment: system
        compute: local
        """)  # fmt: skip
    job = submit(studio.server, job_file)
    assert wait(studio.server, job["name"], timeout=120)["status"] == "Completed"
    page = studio.page
    studio.go(f"/jobs/{job['name']}")
    model = f"studio-model-{uuid.uuid4().hex[:6]}"
    page.fill("#register-model-name", model)
    page.click("#register-model button")
    page.wait_for_url(f"**/models/{model}/versions/1")
    assert "weights.txt" in page.content()
    studio.shot("model-from-job-output")
