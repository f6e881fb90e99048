"""The jobs pages in a real browser: list, live log, timeline, files, cancel, re-submit."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
from jobkit import HOLDING_SLOT, get, http_for, log_text, submit, wait, write_job
from studiokit import Studio, http_sign_in

# A line every 0.3 s for at least 6 s, and on until the test has seen the log grow
# (the test creates the sentinel file), so a slow machine cannot make it end early.
TICKER = """\
import pathlib, sys, time
sentinel = pathlib.Path(sys.argv[2])
i = 0
while i < 20 or (not sentinel.exists() and i < 400):  # at most 2 min after a failed test
    print(f"tick {i}", flush=True)
    time.sleep(0.3)
    i += 1
print("done", flush=True)
pathlib.Path(sys.argv[1], "result.txt").write_text("done")
"""
SLEEPER = "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n"


def _lines(studio: Studio) -> int:
    return int(studio.page.get_attribute("#log-lines", "data-lines") or 0)


def test_watch_a_running_job_then_its_files(studio: Studio, tmp_path: Path) -> None:
    server, page = studio.server, studio.page
    uid = uuid.uuid4().hex[:6]
    job_file = write_job(
        tmp_path,
        f"""\
        command: python tick.py ${{{{outputs.result}}}} {tmp_path / "seen"}
        code: src
        display_name: ticker-{uid}
        experiment_name: studio-jobs-{uid}
        outputs:
          result:
            type: uri_folder
        environment: system
        """,
        {"src/tick.py": TICKER},
    )
    job = submit(server, job_file)
    studio.go(f"/jobs/{job['name']}")
    assert page.inner_text("h1") == f"ticker-{uid}"
    page.wait_for_function("+document.querySelector('#log-lines').dataset.lines > 0")
    first = _lines(studio)
    assert page.get_attribute("#job-log", "data-ended") is None  # still running
    page.wait_for_function(
        f"+document.querySelector('#log-lines').dataset.lines > {first}"
    )  # the log grew while the page was open
    studio.shot("job-running")
    (tmp_path / "seen").write_text("")
    page.wait_for_selector("#job-log[data-ended]", timeout=40_000)
    assert page.get_attribute("#job-log", "data-ended") == "Completed"
    shown = page.inner_text("#job-log")
    assert shown.strip() == log_text(server, job["name"]).strip()  # every line, once
    own = [line for line in shown.splitlines() if not line.startswith("[lapis]")]
    assert "tick 19" in own and own[-1] == "done", own
    assert _lines(studio) == len(shown.strip().splitlines())
    page.wait_for_selector("#job-status[data-status=Completed]")
    timeline = page.inner_text("#job-timeline")
    for status in ("Queued", "Running", "Completed"):
        assert status in timeline, timeline
    overview = page.inner_text("main")
    assert "snapshot" in overview and "local" in overview and "Run" in overview
    assert page.locator(f"a[href='/runs/{job['run_id']}']").count() == 1
    link = page.locator("#job-files a", has_text="result.txt")
    link.wait_for()
    kept = f"azureml://datastores/workspaceblobstore/paths/azureml/{job['name']}/result/"
    assert kept in page.inner_text("#job-files")  # where the output was written
    download = page.request.get(studio.url(link.get_attribute("href") or ""))
    assert download.status == 200 and download.body() == b"done"
    assert download.headers["content-disposition"].startswith("attachment;")
    studio.shot("job-completed")
    page.set_viewport_size({"width": 390, "height": 844})
    studio.shot("job-completed-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    studio.go("/jobs?status=Completed&compute=local&max=25")
    assert f"ticker-{uid}" in page.inner_text("#jobs-table")
    studio.shot("jobs-list")
    studio.go("/jobs?status=Queued")
    assert f"ticker-{uid}" not in page.inner_text("main")
    response = studio.go("/jobs?status=Bogus")
    assert response.status == 400 and "Unknown job status" in page.inner_text("[role=alert]")


def test_cancel_and_resubmit_from_the_page(studio: Studio, tmp_path: Path) -> None:
    server, page = studio.server, studio.page
    uid = uuid.uuid4().hex[:6]
    env = f"img-{uid}"  # registered, image-only: runs in Lapis' interpreter, links to its page
    with http_for(server) as http:
        http.post("/api/v1/environments", {"doc": {"name": env, "image": "python:3.12"}})
    job_file = write_job(
        tmp_path,
        f"""\
        command: python sleep.py
        code: src
        display_name: sleeper-{uid}
        environment: azureml:{env}:1
        outputs:
          result:
            type: uri_folder
        """,
        {"src/sleep.py": SLEEPER},
    )
    job = submit(server, job_file)
    wait(server, job["name"], HOLDING_SLOT)
    page.on("dialog", lambda d: d.accept())
    studio.go(f"/jobs/{job['name']}")
    assert page.locator(f"a[href='/environments/{env}?version=1']").count() == 1
    page.click("#job-status button:has-text('Cancel')")
    page.wait_for_selector("#job-status[data-status=Canceled]", timeout=30_000)
    assert get(server, job["name"])["status"] == "Canceled"
    page.wait_for_selector("#job-log[data-ended=Canceled]")
    assert "Canceled" in page.inner_text("#job-timeline")
    studio.shot("job-canceled")

    page.click("#job-status button:has-text('Re-submit')")
    page.wait_for_url(lambda url: "/jobs/" in url and job["name"] not in url)
    new_name = page.url.rsplit("/", 1)[1]
    again = get(server, new_name)
    assert again["display_name"] == f"sleeper-{uid}"
    assert again["code"]["digest"] == job["code"]["digest"]
    assert again["command"] == job["command"]
    # its output goes under its own name, never into the first run's folder
    kept = "azureml://datastores/workspaceblobstore/paths/azureml/{}/result/"
    assert job["outputs"]["result"]["uri"] == kept.format(job["name"])
    assert again["outputs"]["result"]["uri"] == kept.format(new_name)
    assert page.inner_text("h1") == f"sleeper-{uid}"
    studio.shot("job-resubmitted")
    with http_for(server) as http:
        http.post(f"/api/v1/jobs/{new_name}/cancel", {})
    assert wait(server, new_name)["status"] == "Canceled"


def test_failed_job_reason_escaped_text_and_missing_job(studio: Studio, tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    job_file = write_job(
        tmp_path,
        f"""\
        command: echo '{evil}' && exit 3
        display_name: "{evil}"
        environment: system
        """,
    )
    job = wait(studio.server, submit(studio.server, job_file)["name"])
    dialogs: list[Any] = []
    studio.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    studio.go(f"/jobs/{job['name']}")
    studio.page.wait_for_selector("#job-log[data-ended]")
    assert studio.page.inner_text("h1") == evil
    assert evil in studio.page.inner_text("#job-log")
    assert job["status"] == "Failed" and job["status_reason"]  # the reason is shown prominently
    assert job["status_reason"] in studio.page.inner_text("#job-status .job-reason")
    studio.go("/jobs")
    assert evil in studio.page.inner_text("#jobs-table")
    assert dialogs == []
    studio.shot("job-escaped")
    response = studio.go("/jobs/no_such_job_here")
    assert response.status == 404 and "no_such_job_here" in studio.page.inner_text("[role=alert]")


def test_log_stream_resumes_from_its_cursor(lapis_server: Any, tmp_path: Path) -> None:
    """The SSE route itself: every event carries the cursor; a reconnect resumes after it."""
    job_file = write_job(
        tmp_path,
        """\
        command: python -c "print('first'); print('second')"
        environment: system
        """,
    )
    name = wait(lapis_server, submit(lapis_server, job_file)["name"])["name"]
    with httpx.Client(base_url=lapis_server.url) as http:
        http_sign_in(http, lapis_server.token)
        whole = http.get(f"/jobs/{name}/log/stream")
        assert whole.headers["content-type"].startswith("text/event-stream")
        assert "data: first\ndata: second" in whole.text
        assert whole.text.rstrip().endswith("event: end\ndata: Completed")
        cursor = next(
            line.split(": ", 1)[1] for line in whole.text.splitlines() if line.startswith("id: ")
        )
        again = http.get(f"/jobs/{name}/log/stream", headers={"Last-Event-ID": cursor})
        assert "first" not in again.text and "event: end" in again.text
        bad = http.get(f"/jobs/{name}/log/stream", params={"cursor": "x"})
        assert bad.status_code == 400 and "Invalid log cursor" in bad.text
