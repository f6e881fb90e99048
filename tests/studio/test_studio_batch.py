"""The batch endpoint page in a real browser: settings, invoke, invocations, errors, escaping.

One endpoint per server (module), made from examples/batch with the CLI as a
user would, with the example's ``linear`` deployment and a copy of it named
``linear2``; the page's Invoke form then runs a real scoring job.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from jobkit import http_for, lapis_cli
from studiokit import Studio

pytestmark = pytest.mark.timeout(180)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "batch"
EVIL = "<script>alert(1)</script>"


def ok(server: Any, *args: str) -> Any:
    proc = lapis_cli(server, *args, "-o", "json")
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return json.loads(proc.stdout) if proc.stdout.strip() else None


@pytest.fixture(scope="module")
def batch(lapis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The example endpoint (default ``linear``, and ``linear2``) and its data folder."""
    uid = uuid.uuid4().hex[:6]
    folder = tmp_path_factory.mktemp("batch") / "batch"
    shutil.copytree(EXAMPLES, folder)
    for name in ("endpoint.yml", "deployment.yml"):
        path = folder / name
        path.write_text(
            path.read_text()
            .replace("house-prices-linear", f"house-linear-{uid}")
            .replace("house-prices", f"houses-{uid}")
        )
    spec = folder / "deployment.yml"
    (folder / "deployment2.yml").write_text(
        spec.read_text()
        .replace("name: linear", "name: linear2")
        .replace("error_threshold: -1", "error_threshold: 5")
    )
    model = f"house-linear-{uid}"
    ok(lapis_server, "model", "create", "--name", model, "--path", str(folder / "model"))
    ok(lapis_server, "batch-endpoint", "create", "-f", str(folder / "endpoint.yml"))
    ok(lapis_server, "batch-deployment", "create", "-f", str(spec))
    ok(lapis_server, "batch-deployment", "create", "-f", str(folder / "deployment2.yml"))
    asset = f"houses-data-{uid}"  # the page scores data the workspace knows
    ok(lapis_server, "data", "create", "--name", asset, "--path", str(folder / "data"))
    return {"name": f"houses-{uid}", "model": model, "data": f"azureml:{asset}@latest"}


def test_invoke_from_the_page(studio: Studio, batch: dict[str, Any]) -> None:
    page, name = studio.page, batch["name"]
    studio.go("/endpoints")
    page.click(f"#batch-endpoints a:text-is('{name}')")
    page.wait_for_url(f"**/batch-endpoints/{name}")
    assert (
        page.inner_text("#batch-description")
        == "Scores folders of house records with a linear model."
    )
    assert page.inner_text("#invoke-uri").endswith(f"/api/v1/batchEndpoints/{name}/invoke")
    assert page.inner_text("#default-deployment") == "linear"
    assert "team: examples" in page.inner_text("#batch-tags")
    assert "lapis data create" in page.inner_text("#invoke-help")
    assert page.locator(f"#invoke-assets option[value='{batch['data']}']").count() == 1
    row = page.locator("#batch-deployments-table tr[data-deployment=linear]")
    text = row.inner_text()
    assert "default" in row.locator(".default-marker").inner_text()
    assert f"{batch['model']}:1" in text and "local" in text and "system" in text
    assert "2 \u00d7 1" in text and "append_row → predictions.csv" in text
    assert "max_retries 3, timeout 30 s" in text and "-1" in text
    assert row.locator(f"a[href='/models/{batch['model']}/versions/1']").count() == 1
    other = page.locator("#batch-deployments-table tr[data-deployment=linear2]")
    assert other.locator(".default-marker").count() == 0
    assert page.inner_text("#invocations") == "Not invoked yet."
    studio.shot("batch-endpoint")

    page.fill("#invoke-input", str(batch["data"]))
    page.click("#invoke-submit")
    page.wait_for_url("**/jobs/*")
    job = page.url.rsplit("/", 1)[-1]
    page.wait_for_selector("#job-status[data-status=Completed]", timeout=60_000)
    studio.shot("batch-job")

    studio.go(f"/batch-endpoints/{name}")
    listed = page.locator(f"#invocations-table tr[data-job='{job}']")
    assert "Completed" in listed.inner_text() and "linear" in listed.inner_text()
    assert listed.locator(f"a[href='/jobs/{job}']").count() == 1
    assert page.get_attribute("#invocations", "data-live") == "false"
    studio.shot("batch-endpoint-invoked")


def test_errors_and_make_default(studio: Studio, batch: dict[str, Any], tmp_path: Path) -> None:
    page, name = studio.page, batch["name"]
    studio.go(f"/batch-endpoints/{name}")
    page.fill("#invoke-input", "azureml:nowhere@latest")
    page.click("#invoke-submit")
    alert = page.wait_for_selector("#messages [role=alert]")
    assert "Data asset 'nowhere' not found" in alert.inner_text(), alert.inner_text()
    assert f"/batch-endpoints/{name}" in page.url
    studio.shot("batch-missing-folder")

    page.get_by_role("button", name="Make linear2 default", exact=True).click()
    page.wait_for_selector("#batch-deployments .flash.ok")
    assert page.inner_text("#default-deployment") == "linear2"
    new = page.locator("#batch-deployments-table tr[data-deployment=linear2]")
    assert new.locator(".default-marker").count() == 1
    assert page.get_by_role("button", name="Make linear default", exact=True).count() == 1
    studio.shot("batch-made-default")
    studio.go(f"/batch-endpoints/{name}")
    assert page.inner_text("#default-deployment") == "linear2"  # stored, not only shown
    page.get_by_role(
        "button", name="Make linear default", exact=True
    ).click()  # back, for the other tests
    page.wait_for_selector("#batch-deployments .flash.ok")

    empty = f"empty-{uuid.uuid4().hex[:6]}"
    http_for(studio.server).request("POST", "/api/v1/batchEndpoints", json_body={"name": empty})
    studio.go(f"/batch-endpoints/{empty}")
    assert "No deployments yet" in page.inner_text("#batch-deployments")
    page.fill("#invoke-input", str(batch["data"]))
    page.click("#invoke-submit")
    alert = page.wait_for_selector("#messages [role=alert]")
    assert f"Batch endpoint '{empty}' has no default deployment" in alert.inner_text()
    studio.shot("batch-no-default")

    response = studio.go(f"/batch-endpoints/nope-{uuid.uuid4().hex[:6]}")
    assert response.status == 404
    assert "Known batch endpoints" in page.inner_text("main")


def test_description_is_text(studio: Studio, batch: dict[str, Any]) -> None:
    name = f"evil-{uuid.uuid4().hex[:6]}"
    http_for(studio.server).request(
        "POST", "/api/v1/batchEndpoints", json_body={"name": name, "description": EVIL}
    )
    dialogs: list[str] = []
    studio.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    studio.go("/endpoints")
    assert EVIL in studio.page.inner_text("#batch-endpoints")
    studio.go(f"/batch-endpoints/{name}")
    assert studio.page.inner_text("#batch-description") == EVIL
    studio.shot("batch-escaped")
    assert dialogs == []
