"""Job schedules in Azure ML CLI v2 YAML (``schedule.schema.json``).

``trigger`` is a ``cron`` or ``recurrence`` trigger (shared with compute instance
schedules, lapis/specs/schedules.py, plus ``end_time``); ``create_job`` is a job file
next to the schedule, a job written inline, or ``azureml:<job>``, an existing job run
again as it was. The client reads and uploads what a file names (code, inputs), as
``lapis job create`` does, so the server never reads the client's folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lapis.specs.job import _check_keys, _mapping, _string
from lapis.specs.schedules import parse_trigger
from lapis.specs.yaml_lines import Located, load

KEYS = {"$schema", "name", "display_name", "description", "tags", "properties", "trigger",
        "create_job", "is_enabled"}  # fmt: skip
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,59}$")


@dataclass
class JobScheduleSpec:
    name: str
    trigger: dict[str, Any]  # normalised: cron, time_zone, start_time, end_time, trigger
    create_job: str | dict[str, Any]  # a file path, "azureml:<job>", or an inline job
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    enabled: bool = True


def parse_job_schedule(text: str, source: str = "<schedule>") -> JobScheduleSpec:
    doc: Located = load(text, source)
    data = _mapping(doc, (), doc.data)
    _check_keys(doc, (), data, KEYS, "a schedule")
    name = _string(doc, ("name",), data.get("name"), required=True)
    assert name is not None
    if not _NAME.match(name):
        raise doc.error(("name",), "holds letters, digits, '_' and '-' (up to 60), "
                                   "starting with a letter or digit")  # fmt: skip
    if "create_job" not in data:
        raise doc.error((), "needs 'create_job': a job file, an inline job or azureml:<job>")
    job = data["create_job"]
    if isinstance(job, str):
        job = job.strip()
        if not job:
            raise doc.error(("create_job",), "must name a job file or azureml:<job>")
    elif not isinstance(job, dict):
        raise doc.error(("create_job",), "must be a job file, an inline job or azureml:<job>")
    elif str(job.get("type", "command")).lower() not in ("command", "pipeline"):
        raise doc.error(("create_job", "type"), "a schedule runs a command or a pipeline job")
    enabled = data.get("is_enabled", True)
    if not isinstance(enabled, bool):
        raise doc.error(("is_enabled",), "must be true or false")
    tags = _mapping(doc, ("tags",), data.get("tags"))
    return JobScheduleSpec(
        name=name,
        trigger=parse_trigger(data.get("trigger"), ("trigger",), doc.error, allow_end=True),
        create_job=job,
        display_name=_string(doc, ("display_name",), data.get("display_name")),
        description=_string(doc, ("description",), data.get("description")),
        tags={str(k): str(v) for k, v in tags.items()},
        enabled=enabled,
    )
