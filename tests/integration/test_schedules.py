"""Job schedules: Azure's schedule files (a cron and a recurrence trigger, a job file and
an inline job), one job per tick — never two, across a kill -9 — submitted as the
schedule's creator; enable, disable, delete; one-line mistakes."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from clusterkit import json_cli
from jobkit import lapis_cli, wait

from lapis.jobs.schedules import tick_name

FILES = Path(__file__).parents[1] / "compat" / "files" / "schedules"


def _files(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / uuid.uuid4().hex[:6]
    shutil.copytree(FILES, folder)
    for spec in folder.glob("*.yml"):
        text = spec.read_text().replace("name: every_minute", f"name: {name}")
        spec.write_text(text.replace("name: nightly_retrain", f"name: {name}"))
    return folder


@pytest.mark.stores("sqlite", "postgres")
def test_each_tick_makes_one_job_even_when_asked_twice(
    inprocess_server: Any, tmp_path: Path
) -> None:
    """The clock driven by hand (in the server's process): a due tick makes one job named
    for it; the same tick again, or a tick whose job exists already (a crash between the
    job and the bookkeeping), makes none."""
    name = f"hand-{uuid.uuid4().hex[:6]}"
    folder = _files(tmp_path, name)
    made = json_cli(inprocess_server, "schedule", "create", "-f", str(folder / "every-minute.yml"))
    assert made["is_enabled"] and made["cron"] == "* * * * *" and made["last_job"] is None
    schedules = inprocess_server.ws.schedules
    start = made["created_at"] + 120_000  # a minute nobody's real clock reaches in this test
    tick = start - start % 60_000
    schedules.tick(tick + 1_000)
    schedules.tick(tick + 2_000)  # the same tick again
    first = tick_name(name, tick)
    jobs = json_cli(inprocess_server, "schedule", "show", "-n", name)["jobs"]
    assert [j["name"] for j in jobs] == [first]
    assert jobs[0]["tags"]["schedule"] == name
    # the next tick's job already there (made before a crash): only the bookkeeping moves
    second = tick_name(name, tick + 60_000)
    schedules.jobs.resubmit(first, None, new_name=second, tags={"schedule": name})
    schedules.tick(tick + 61_000)
    shown = json_cli(inprocess_server, "schedule", "show", "-n", name)
    assert sorted(j["name"] for j in shown["jobs"]) == sorted([first, second])
    assert shown["last_error"] is None
    for job in (first, second):
        assert wait(inprocess_server, job, timeout=60)["status"] == "Completed"


def test_a_one_minute_cron_fires_twice_across_a_kill_9(fresh_server: Any, tmp_path: Path) -> None:
    name = f"cron-{uuid.uuid4().hex[:6]}"
    folder = _files(tmp_path, name)
    json_cli(fresh_server, "schedule", "create", "-f", str(folder / "every-minute.yml"))

    def fired() -> list[dict[str, Any]]:
        return list(json_cli(fresh_server, "schedule", "show", "-n", name)["jobs"])

    deadline = time.monotonic() + 75
    while not fired():
        assert time.monotonic() < deadline, "the schedule never fired"
        time.sleep(1)
    fresh_server.kill9()
    fresh_server.start()
    deadline = time.monotonic() + 75
    while len(fired()) < 2:
        assert time.monotonic() < deadline, f"the second tick never fired: {fired()}"
        time.sleep(1)
    time.sleep(2)
    jobs = fired()
    assert len(jobs) == 2 and len({j["name"] for j in jobs}) == 2, jobs
    for job in jobs:
        done = wait(fresh_server, job["name"], timeout=60)
        assert done["status"] == "Completed", done["status_reason"]
        assert done["experiment_name"] == "scheduled"
        assert done["created_by"] == "admin"
    shown = lapis_cli(fresh_server, "schedule", "show", "-n", name)
    assert shown.returncode == 0 and "cron '* * * * *' (UTC)" in shown.stdout
    off = json_cli(fresh_server, "schedule", "disable", "-n", name)
    assert not off["is_enabled"] and off["next_run"] is None


def test_recurrence_inline_jobs_mistakes_and_lifecycle(lapis_server: Any, tmp_path: Path) -> None:
    name = f"nightly-{uuid.uuid4().hex[:6]}"
    folder = _files(tmp_path, name)
    made = json_cli(
        lapis_server, "schedule", "create", "-f", str(folder / "nightly-recurrence.yml")
    )
    assert made["cron"] == "30 4 * * *" and made["time_zone"] == "America/Los_Angeles"
    assert made["next_run"] and made["next_run"] > made["created_at"]
    listed = {s["name"]: s for s in json_cli(lapis_server, "schedule", "list")}
    assert listed[name]["is_enabled"]
    # the same name again: new settings (Azure's create_or_update), same schedule
    spec = folder / "nightly-recurrence.yml"
    spec.write_text(spec.read_text().replace("hours: [4]", "hours: [5]"))
    assert json_cli(lapis_server, "schedule", "create", "-f", str(spec))["cron"] == "30 5 * * *"
    assert not json_cli(lapis_server, "schedule", "disable", "-n", name)["is_enabled"]
    assert json_cli(lapis_server, "schedule", "enable", "-n", name)["is_enabled"]
    gone = lapis_cli(lapis_server, "schedule", "delete", "-n", name)
    assert gone.returncode == 0 and f"Deleted schedule {name}" in gone.stdout
    missing = lapis_cli(lapis_server, "schedule", "show", "-n", name)
    assert missing.returncode == 1 and "not found" in missing.stderr

    bad = tmp_path / "bad.yml"
    for text, says in [
        ("name: x\ntrigger: {type: cron, expression: '* * *'}\ncreate_job: azureml:j\n",
         "bad.yml:2: 'trigger.expression' must be a five-field cron"),
        ("name: x\ntrigger: {type: cron, expression: '* * * * *', time_zone: Mars}\n"
         "create_job: azureml:j\n", "unknown time zone 'Mars'"),
        ("name: x\ntrigger: {type: cron, expression: '* * * * *'}\n", "needs 'create_job'"),
        ("name: x\ntrigger: {type: cron, expression: '* * * * *'}\n"
         "create_job: azureml:no_such_job\n", "no_such_job"),
        ("name: x\ntrigger: {type: cron, expression: '* * * * *'}\ncreate_job: ./nope.yml\n",
         "nope.yml"),
    ]:  # fmt: skip
        bad.write_text(text)
        done = lapis_cli(lapis_server, "schedule", "create", "-f", str(bad))
        assert done.returncode == 1 and says in done.stderr, (text, done.stderr)
        assert "Traceback" not in done.stderr


def test_the_sdk_schedules_a_command_job_as_azure_ai_ml_does(
    lapis_server: Any, tmp_path: Path
) -> None:
    from lapis.ml import MLClient, command
    from lapis.ml.entities import JobSchedule, RecurrencePattern, RecurrenceTrigger

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "hello.py").write_text("print('hello')\n")
    name = f"sdk-{uuid.uuid4().hex[:6]}"
    job = command(code=str(tmp_path / "src"), command="python hello.py", environment="system",
                  compute="local", experiment_name="sdk-scheduled")  # fmt: skip
    pattern = RecurrencePattern(hours=6, minutes=15, week_days=["monday", "friday"])
    trigger = RecurrenceTrigger(frequency="week", interval=1, time_zone="UTC", schedule=pattern)
    with MLClient(lapis_server.url, lapis_server.token) as ml:
        made = ml.schedules.begin_create_or_update(
            JobSchedule(name=name, trigger=trigger, create_job=job)
        ).result()
        assert made.is_enabled and made.cron == "15 6 * * 1,5" and made.next_run
        assert name in {s.name for s in ml.schedules.list()}
        assert not ml.schedules.begin_disable(name).result().is_enabled
        assert ml.schedules.get(name).next_run is None
        assert ml.schedules.begin_enable(name).result().is_enabled
        ml.schedules.begin_delete(name).result()
        assert name not in {s.name for s in ml.schedules.list()}
    # deleted for every client
    assert lapis_cli(lapis_server, "schedule", "show", "-n", name).returncode == 1


@pytest.mark.stores("sqlite", "postgres")
def test_a_schedule_runs_a_pipeline_whose_unchanged_steps_are_reused(
    inprocess_server: Any, tmp_path: Path
) -> None:
    """create_job: a pipeline file (its step's code uploaded at create): each tick makes a
    pipeline named for it, tagged with the schedule; the second tick's steps are reused from
    the first's (nothing changed), as Azure's scheduled pipelines are."""
    name = f"pipe-{uuid.uuid4().hex[:6]}"
    folder = _files(tmp_path, name)
    spec = folder / "pipeline-hourly.yml"
    spec.write_text(spec.read_text().replace("name: pipeline_hourly", f"name: {name}"))
    made = json_cli(inprocess_server, "schedule", "create", "-f", str(spec))
    assert made["cron"] == "5 * * * *"
    schedules = inprocess_server.ws.schedules
    start = made["created_at"] + 2 * 3_600_000
    hour = start - start % 3_600_000 + 5 * 60_000
    schedules.tick(hour + 1_000)
    first = tick_name(name, hour)
    done = wait(inprocess_server, first, timeout=120)
    assert done["status"] == "Completed", done["status_reason"]
    assert done["type"] == "pipeline" and done["tags"]["schedule"] == name
    schedules.tick(hour + 3_600_000 + 1_000)
    second = tick_name(name, hour + 3_600_000)
    assert wait(inprocess_server, second, timeout=120)["status"] == "Completed"
    steps = {s["name"]: s for s in json_cli(inprocess_server, "job", "show", second)["steps"]}
    assert steps["gather"]["reused_from"] == f"{first}-gather"
    assert steps["report"]["reused_from"] == f"{first}-report"
    shown = json_cli(inprocess_server, "schedule", "show", "-n", name)
    assert sorted(j["name"] for j in shown["jobs"]) == sorted([first, second])
    # a pipeline the schedule cannot run is refused at create, in one line
    broken = folder / "tick-pipeline.yml"
    broken.write_text(broken.read_text().replace("jobs.gather.outputs", "jobs.gone.outputs"))
    refused = lapis_cli(inprocess_server, "schedule", "create", "-f", str(spec))
    assert refused.returncode == 1 and "no step 'gone'" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
