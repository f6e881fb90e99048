"""The models pages in a real browser: names, versions, files and the lineage graph.

Two ways a version comes to be, each with its own end of the chain: the
deployment's inline model (``<endpoint>-blue``, registered by the CLI), whose
graph ends in a box for the deployment, and a job's output
(``lapis model create --path azureml://jobs/<job>/outputs/model``), whose
graph starts with a box for the job.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from jobkit import lapis_cli, submit, wait, write_job
from studiokit import Studio

pytestmark = pytest.mark.timeout(240)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "endpoints"
EVIL = "<script>alert(1)</script>"
TRAIN = """\
import os, sys
data, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "weights.bin"), "wb") as fh:
    fh.write(open(data, "rb").read() * 2)
"""


def ok(server: Any, *args: str) -> Any:
    proc = lapis_cli(server, *args, "-o", "json")
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def test_deployed_model_versions_files_and_lineage(studio: Studio, tmp_path: Path) -> None:
    server = studio.server
    ep = f"mo-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "endpoints"
    shutil.copytree(EXAMPLE, folder)
    for yml in folder.glob("*.yml"):
        yml.write_text(yml.read_text().replace("my-endpoint", ep))
    ok(server, "online-endpoint", "create", "-f", str(folder / "endpoint.yml"))
    ok(server, "online-deployment", "create", "-f", str(folder / "blue.yml"), "--all-traffic")
    model = f"{ep}-blue"

    studio.go("/models")
    page = studio.page
    row = page.locator("#models-table tr", has_text=model)
    assert row.count() == 1 and "custom_model" in row.inner_text()
    studio.shot("models-list")
    row.locator(f"text={model}").first.click()
    page.wait_for_selector("#versions-table")
    assert "READY" in page.inner_text("#versions-table")
    studio.shot("model-versions")
    page.click("#versions-table a >> text=1")
    svg = page.wait_for_selector("svg.lineage")
    text = svg.text_content()
    assert "deployment blue" in text and f"endpoint {ep}" in text and f"model {model}" in text
    link = page.locator("svg.lineage a", has_text="deployment blue")
    assert link.get_attribute("href") == f"/endpoints/{ep}"
    assert page.locator("svg.lineage .job").count() == 0  # an upload: no job behind it
    with page.expect_download() as got:
        page.click("#files-table a >> text=model.json")
    saved = got.value.path()
    assert json.loads(Path(saved).read_text()) == json.loads(
        (EXAMPLE / "model-1" / "model.json").read_text()
    )
    studio.shot("model-version-deployed")
    link.click()
    page.wait_for_url(f"**/endpoints/{ep}")
    # A path outside the version's files is not served.
    missing = page.request.get(studio.url(f"/models/{model}/versions/1/files/../../x"))
    assert missing.status in (400, 404)


def test_job_output_version_lineage_archive_and_escaping(studio: Studio, tmp_path: Path) -> None:
    server = studio.server
    job_file = write_job(
        tmp_path,
        """\
        command: python train.py ${{inputs.data}} ${{outputs.model}}
        code: src
        inputs:
          data:
            type: uri_file
            path: data/train.csv
        outputs:
          model:
            type: uri_folder
        environment: system
        compute: azureml:local
        """,
        {"src/train.py": TRAIN, "data/train.csv": "x,y\n1,2\n"},
    )
    job = submit(server, job_file)
    assert wait(server, job["name"])["status"] == "Completed"
    name = f"fromjob-{uuid.uuid4().hex[:8]}"
    path = f"azureml://jobs/{job['name']}/outputs/model"
    ok(server, "model", "create", "--name", name, "--path", path, "--tag", f"note={EVIL}")
    ok(server, "model", "create", "--name", name, "--path", path)
    ok(server, "model", "archive", name, "--version", "1")

    dialogs: list[str] = []
    page = studio.page
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    studio.go(f"/models?q={name}")
    row = page.locator("#models-table tbody tr")
    assert row.count() == 1
    assert row.locator("td").nth(2).inner_text() == "1"  # the archived version is hidden
    studio.go(f"/models?q={name}&archived=true")
    assert page.locator("#models-table tbody tr td").nth(2).inner_text() == "2"

    listed = studio.go(f"/models/{name}?archived=true")
    assert EVIL not in listed.text()
    versions = page.inner_text("#versions-table")
    assert EVIL in versions and job["name"] in versions and "archived" in versions
    studio.shot("model-versions-archived")

    shown = studio.go(f"/models/{name}/versions/1")
    assert EVIL not in shown.text()
    assert EVIL in page.inner_text("#version-tags")
    svg = page.wait_for_selector("svg.lineage")
    assert job["name"] in svg.text_content() and "train.csv" in svg.text_content()
    job_link = page.locator("svg.lineage a", has=page.locator(".job"))
    assert job_link.get_attribute("href") == f"/jobs/{job['name']}"
    assert "no deployment" in svg.text_content()
    assert "weights.bin" in page.inner_text("#files-table")
    studio.shot("model-version-from-job")
    page.wait_for_timeout(200)
    assert dialogs == []

    assert studio.go(f"/models/{name}/versions/9").status == 404
    assert studio.go("/models/no-such-model-here").status == 404
