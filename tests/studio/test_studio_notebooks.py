"""The Notebooks page and an instance's JupyterLab in a real browser: files in one's
folder of the workspace file share (new notebook, upload, rename, delete), the compute
page's Applications column, and a cell run in JupyterLab opened from the studio."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from clusterkit import until
from jobkit import lapis_cli
from studiokit import Studio

pytestmark = pytest.mark.jupyterlab  # its servers run JupyterLab (tests/conftest.py)


def test_notebooks_page_manages_my_folder(studio: Studio, tmp_path: Path) -> None:
    page = studio.page
    studio.go("/")
    page.click("nav >> text=Notebooks")
    page.wait_for_selector("#notebook-files[data-path='Users/admin']")
    name = f"analysis-{uuid.uuid4().hex[:4]}.ipynb"
    page.fill("#notebook-new input[name=name]", name)
    page.click("#notebook-new button[type=submit]")
    page.wait_for_selector(f"#notebook-table tr[data-entry='{name}']")
    local = tmp_path / "rows.csv"
    local.write_text("a,b\n1,2\n")
    page.set_input_files("#notebook-upload", str(local))
    page.click("#notebook-actions button:has-text('Upload')")
    page.wait_for_selector("#notebook-table tr[data-entry='rows.csv']")
    kept = studio.server.home / "fileshare" / "Users" / "admin"
    assert (kept / "rows.csv").read_text() == "a,b\n1,2\n"
    assert '"nbformat": 4' in (kept / name).read_text()
    row = page.locator("#notebook-table tr[data-entry='rows.csv']")
    row.locator("input[name=name]").fill("data.csv")
    row.locator("button:has-text('Rename')").click()
    page.wait_for_selector("#notebook-table tr[data-entry='data.csv']")
    studio.shot("notebooks")
    page.on("dialog", lambda d: d.accept())
    page.locator("#notebook-table tr[data-entry='data.csv'] button:has-text('Delete')").click()
    page.wait_for_selector("#notebook-table tr[data-entry='data.csv']", state="detached")
    assert not (kept / "data.csv").exists()
    # another user's folder is readable and has no write actions
    studio.go("/notebooks?path=Users")
    page.wait_for_selector("#notebook-table tr[data-entry='admin']")


def test_jupyterlab_opens_from_the_studio_and_runs_a_cell(studio: Studio) -> None:
    page, server = studio.page, studio.server
    name = f"nb-q{uuid.uuid4().hex[:6]}"
    made = lapis_cli(server, "compute", "create", "-n", name, "--size", "Standard_DS1_v2")
    assert made.returncode == 0, made.stderr
    auth = {"Authorization": f"Bearer {server.token}"}
    until("JupyterLab", lambda: httpx.get(f"{server.url}/compute/{name}/lab/api/status",
                                          headers=auth).status_code == 200, 90)  # fmt: skip
    notebook = f"cell-{uuid.uuid4().hex[:4]}.ipynb"
    with httpx.Client(base_url=f"{server.url}/compute/{name}/lab", headers=auth) as lab:
        cell = {"cell_type": "code", "source": "print(6 * 7)", "metadata": {}, "outputs": [],
                "execution_count": None}  # fmt: skip
        doc = {"cells": [cell], "metadata": {"kernelspec": {"name": "python3",
               "display_name": "Python 3"}}, "nbformat": 4, "nbformat_minor": 5}  # fmt: skip
        assert lab.put(f"/api/contents/{notebook}",
                       json={"type": "notebook", "content": doc}).status_code == 201  # fmt: skip
    studio.go("/compute")
    link = page.locator(f"tr[data-compute='{name}'] a[data-app='JupyterLab']")
    link.wait_for()
    studio.shot("compute-applications")
    # the notebook opens from the Notebooks page in this instance's JupyterLab
    studio.go("/notebooks")
    opener = page.locator(f"tr[data-entry='{notebook}'] a.open-lab[data-instance='{name}']")
    with page.context.expect_page() as opened:
        opener.click()
    lab_page = opened.value
    lab_page.set_default_timeout(60_000)
    lab_page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content")
    # the kernel is up (its WebSocket through the proxy answered) before the cell is run
    lab_page.locator(".jp-StatusBar-TextItem", has_text="Idle").first.wait_for()
    lab_page.click(".jp-Notebook .jp-Cell .cm-content")
    lab_page.keyboard.press("Shift+Enter")
    out = lab_page.locator(".jp-OutputArea-output", has_text="42")
    out.first.wait_for()
    lab_page.screenshot(path=str(studio.folder / "jupyterlab.png"))
    lab_page.close()
    lapis_cli(server, "compute", "delete", "-n", name, "--yes")
