"""Job schedules from the client: the job a schedule names (a file next to the schedule,
or written inline) is prepared here as ``lapis job create`` prepares it — code uploaded
as a snapshot, local inputs uploaded — so the server keeps a submission it can repeat."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from lapis.errors import InvalidParameterValue
from lapis.sdk.connection import LapisHTTP
from lapis.sdk.jobs import prepare_submission
from lapis.sdk.views import Poller
from lapis.specs.job_schedule import parse_job_schedule
from lapis.specs.yaml_lines import read_text_file


def create(http: LapisHTTP, path: Path) -> dict[str, Any]:
    """Create (or update) the schedule in the file at ``path``."""
    text = read_text_file(path, "schedule file")
    return _post(http, text, str(path), path.parent)


def _post(http: LapisHTTP, text: str, source: str, base_dir: Path) -> dict[str, Any]:
    spec = parse_job_schedule(text, source)  # checked here first: one line, no upload
    body: dict[str, Any] = {"yaml": text, "source": source}
    job = spec.create_job
    if isinstance(job, dict):  # written inline: its paths are the schedule file's
        body["job"] = prepare_submission(
            http, yaml.safe_dump(job, sort_keys=False), f"{source} (create_job)", base_dir
        )
    elif not job.startswith("azureml:"):
        job_file = (base_dir / job.removeprefix("file:").strip()).resolve()
        body["job"] = prepare_submission(
            http, read_text_file(job_file, "job file"), str(job_file), job_file.parent
        )
    made: dict[str, Any] = http.post("/api/v1/schedules", body)
    return made


# --- azure-ai-ml's entities and operations --------------------------------------------
def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v)
            for k, v in values.items() if v is not None}  # fmt: skip


@dataclass
class CronTrigger:
    expression: str
    start_time: str | datetime | None = None
    end_time: str | datetime | None = None
    time_zone: str = "UTC"

    def _doc(self) -> dict[str, Any]:
        return _clean({"type": "cron", **asdict(self)})


@dataclass
class RecurrencePattern:
    hours: int | list[int]
    minutes: int | list[int]
    week_days: str | list[str] | None = None
    month_days: int | list[int] | None = None


@dataclass
class RecurrenceTrigger:
    frequency: str  # minute, hour, day, week, month
    interval: int = 1
    schedule: RecurrencePattern | None = None
    start_time: str | datetime | None = None
    end_time: str | datetime | None = None
    time_zone: str = "UTC"

    def _doc(self) -> dict[str, Any]:
        doc = _clean({"type": "recurrence", **asdict(self)})
        if self.schedule is not None:
            doc["schedule"] = _clean(asdict(self.schedule))
        return doc


@dataclass
class JobSchedule:
    """A schedule, as azure-ai-ml's: ``create_job`` is a ``command(...)`` job, a job
    document, a job file's path, or ``azureml:<job>``. What the server answers is added
    once it is stored (``next_run``, ``last_job``, ``last_error``, epoch ms times)."""

    name: str
    trigger: CronTrigger | RecurrenceTrigger | None = None
    create_job: Any = None
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    is_enabled: bool = True
    next_run: int | None = None
    last_job: str | None = None
    last_error: str | None = None
    cron: str | None = None

    def __repr__(self) -> str:
        return f"JobSchedule(name={self.name!r}, is_enabled={self.is_enabled!r})"


def _answered(raw: dict[str, Any]) -> JobSchedule:
    trigger = dict(raw.get("trigger") or {})
    kind = str(trigger.pop("type", "cron")).lower()
    made: CronTrigger | RecurrenceTrigger
    if kind == "cron":
        made = CronTrigger(**{k: v for k, v in trigger.items() if k in
                              ("expression", "start_time", "end_time", "time_zone")})  # fmt: skip
    else:
        pattern = trigger.pop("schedule", None)
        made = RecurrenceTrigger(
            **{k: v for k, v in trigger.items()
               if k in ("frequency", "interval", "start_time", "end_time", "time_zone")},
            schedule=RecurrencePattern(**pattern) if isinstance(pattern, dict) else None,
        )  # fmt: skip
    return JobSchedule(
        name=raw["name"], trigger=made, create_job=raw.get("create_job"),
        display_name=raw.get("display_name"), description=raw.get("description"),
        tags=raw.get("tags") or {}, is_enabled=raw["is_enabled"], next_run=raw.get("next_run"),
        last_job=raw.get("last_job"), last_error=raw.get("last_error"), cron=raw.get("cron"),
    )  # fmt: skip


class ScheduleOperations:
    """``client.schedules``, in azure-ai-ml's shape (``begin_*`` return pollers)."""

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def begin_create_or_update(self, schedule: JobSchedule) -> Poller[JobSchedule]:
        from lapis.sdk.entities import CommandJob

        if schedule.trigger is None:
            raise InvalidParameterValue(f"schedule {schedule.name} needs a trigger")
        job = schedule.create_job
        if isinstance(job, CommandJob):
            job = job.to_dict(Path.cwd())
        elif isinstance(job, Path):
            job = str(job.resolve())
        doc = _clean({"name": schedule.name, "display_name": schedule.display_name,
                      "description": schedule.description, "tags": schedule.tags or None,
                      "trigger": schedule.trigger._doc(), "create_job": job,
                      "is_enabled": schedule.is_enabled})  # fmt: skip
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
        return Poller(_answered(_post(self._http, text, "<sdk>", Path.cwd())))

    def get(self, name: str) -> JobSchedule:
        return _answered(self._http.get(path_of(name)))

    def list(self) -> list[JobSchedule]:
        return [_answered(s) for s in self._http.get("/api/v1/schedules")["schedules"]]

    def begin_enable(self, name: str) -> Poller[JobSchedule]:
        return Poller(_answered(self._http.post(f"{path_of(name)}/enable", {})))

    def begin_disable(self, name: str) -> Poller[JobSchedule]:
        return Poller(_answered(self._http.post(f"{path_of(name)}/disable", {})))

    def begin_delete(self, name: str) -> Poller[None]:
        self._http.request("DELETE", path_of(name))
        return Poller(None)


def path_of(name: str) -> str:
    return f"/api/v1/schedules/{quote(name, safe='')}"
