"""The Components page and the jobs page's schedules in a real browser: a component from
Azure's file shape listed and opened (inputs with their defaults, ranges and choices;
versions), a recurrence schedule with its trigger, time zone and state, and a pipeline's
a pipeline's DAG drawn as a graph."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from jobkit import lapis_cli
from studiokit import Studio

FILES = Path(__file__).resolve().parents[1] / "compat" / "files" / "components"


def test_components_are_listed_and_shown_with_their_inputs_and_versions(
    studio: Studio, tmp_path: Path
) -> None:
    from jobkit import submit

    page = studio.page
    name = f"studio_{uuid.uuid4().hex[:6]}"
    shutil.copytree(FILES, tmp_path / "c")
    spec = tmp_path / "c" / "train.yml"
    spec.write_text(spec.read_text().replace("name: train_model", f"name: {name}"))
    assert lapis_cli(studio.server, "component", "create", "-f", str(spec)).returncode == 0
    spec.write_text(spec.read_text().replace('version: "1"', 'version: "2"'))
    assert lapis_cli(studio.server, "component", "create", "-f", str(spec)).returncode == 0

    studio.go("/")
    page.click("nav >> text=Components")
    page.wait_for_selector("#components-table")
    row = page.locator("#components-table tr", has_text=name).inner_text()
    assert "2" in row and "max_epochs" in row and "model_output" in row, row
    studio.shot("components")
    page.click(f"a:has-text('{name}')")
    page.wait_for_selector("#component-io")
    io = page.inner_text("#component-io")
    assert "max_epochs" in io and "1 … 1000" in io and "time-based | step" in io, io
    assert "optional" in io and "model_output" in io
    facts = page.inner_text("#component-facts")
    assert "azureml:AzureML-sklearn-1.5@latest" in facts and "snapshot" in facts
    assert "--max_epochs" in page.inner_text("pre.command")
    assert page.locator("#component-versions tr[data-version]").count() == 2
    studio.shot("component")
    page.click("#component-versions a:has-text('1')")
    page.wait_for_selector("#component-facts")
    assert "1" in page.inner_text("#component-facts")
    used = page.inner_text("#used-h + p")
    assert f"azureml:{name}:1" in used, used  # no pipeline yet: how to name it in one
    # a pipeline whose step runs version 2: listed under "Used by pipelines", linked
    pipeline = tmp_path / "uses.yml"
    pipeline.write_text(
        f"type: pipeline\njobs:\n  fit:\n    component: azureml:{name}:2\n"
        "    inputs: {training_data: {type: uri_folder, path: azureml://datastores/"
        "workspaceblobstore/paths/nowhere}}\n"
    )
    made = submit(studio.server, pipeline)
    studio.go(f"/components/{name}")
    row = page.locator(f"#component-used tr[data-pipeline='{made['name']}']").inner_text()
    assert "fit" in row and "2" in row, row
    lapis_cli(studio.server, "job", "cancel", made["name"])  # it was only needed as a user
    missing = studio.go("/components/no_such_component")
    assert missing.status == 404 and "not found" in page.inner_text("[role=alert]")


def test_schedules_are_shown_on_the_jobs_page(studio: Studio, tmp_path: Path) -> None:
    page = studio.page
    name = f"studio-{uuid.uuid4().hex[:6]}"
    folder = tmp_path / "s"
    shutil.copytree(FILES.parent / "schedules", folder)
    spec = folder / "nightly-recurrence.yml"
    spec.write_text(spec.read_text().replace("name: nightly_retrain", f"name: {name}"))
    assert lapis_cli(studio.server, "schedule", "create", "-f", str(spec)).returncode == 0
    studio.go("/jobs")
    page.wait_for_selector("#schedules-table")
    row = page.locator(f"tr[data-schedule='{name}']").inner_text()
    assert "enabled" in row and "every 1 day" in row and "America/Los_Angeles" in row, row
    studio.shot("jobs-schedules")


def test_a_pipelines_dag_is_drawn_live_and_a_resubmission_marks_reused_steps(
    studio: Studio, tmp_path: Path
) -> None:
    from jobkit import submit, wait

    page = studio.page
    pipeline = tmp_path / "fan.yml"
    pipeline.write_text(
        "type: pipeline\ndisplay_name: fan out and in\njobs:\n"
        f"  prepare:\n    command: echo p{uuid.uuid4().hex[:6]} ${{{{outputs.o}}}}\n"
        "    outputs: {o: {type: uri_folder}}\n"
        "  left:\n    command: echo l ${{inputs.x}}\n    inputs:\n"
        "      x: ${{parent.jobs.prepare.outputs.o}}\n"
        "  right:\n    command: echo r ${{inputs.x}}\n    inputs:\n"
        "      x: ${{parent.jobs.prepare.outputs.o}}\n"
    )
    parent = submit(studio.server, pipeline)
    assert wait(studio.server, parent["name"], timeout=120)["status"] == "Completed"
    studio.go(f"/jobs/{parent['name']}")
    page.wait_for_selector("#pipeline-steps svg .step")
    graph = page.locator("#pipeline-steps")
    assert graph.get_attribute("data-waves") == "2"
    assert page.locator("#pipeline-steps .step[data-wave='0']").get_attribute("data-step") == (
        "prepare"
    )
    assert page.locator("#pipeline-steps .step[data-wave='1']").count() == 2
    # an edge from prepare to each step that reads its output, drawn between the boxes
    for to in ("left", "right"):
        edge = page.locator(f"#pipeline-steps path.edge[data-from=prepare][data-to={to}]")
        assert edge.count() == 1 and edge.get_attribute("data-status") == "Completed"
        box = page.locator(f"#pipeline-steps .step[data-step={to}]").bounding_box()
        start = page.locator("#pipeline-steps .step[data-step=prepare]").bounding_box()
        drawn = edge.bounding_box()
        assert box and start and drawn
        # it runs in the gap from prepare's right side to the step's left (strokes aside)
        assert abs(drawn["x"] - (start["x"] + start["width"])) < 6
        assert abs(drawn["x"] + drawn["width"] - box["x"]) < 6
    assert page.locator("#pipeline-steps .step[data-status=Completed]").count() == 3
    studio.shot("pipeline")
    # Re-submit: nothing changed, so every step is reused, marked so, and says from where
    page.on("dialog", lambda d: d.accept())
    page.click("#job-status button:has-text('Re-submit')")
    page.wait_for_url(lambda url: "/jobs/" in url and parent["name"] not in url)
    again = page.url.rsplit("/", 1)[1]
    assert wait(studio.server, again, timeout=120)["status"] == "Completed"
    page.reload()
    page.wait_for_selector("#pipeline-steps .step[data-reused]")
    assert page.locator("#pipeline-steps .step[data-reused]").count() == 3
    note = page.locator("#pipeline-steps .step-note[data-step=left]").inner_text()
    assert f"reused from job {parent['name']}-left" in note, note
    state = page.locator("#pipeline-steps .step[data-step=left] text.state").text_content()
    assert state is not None and "reused" in state
    studio.shot("pipeline-reused")
    page.click("#pipeline-steps .step[data-step=left] a")
    page.wait_for_url(f"**/jobs/{again}-left")
    assert "reused from job" in page.inner_text("#job-status")
