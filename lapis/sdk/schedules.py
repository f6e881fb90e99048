"""Job schedules from the client: the job a schedule names (a file next to the schedule,
or written inline) is prepared here as ``lapis job create`` prepares it — code uploaded
as a snapshot, local inputs uploaded — so the server keeps a submission it can repeat."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from lapis.sdk.connection import LapisHTTP
from lapis.sdk.jobs import prepare_submission
from lapis.specs.job_schedule import parse_job_schedule
from lapis.specs.yaml_lines import read_text_file


def create(http: LapisHTTP, path: Path) -> dict[str, Any]:
    """Create (or update) the schedule in the file at ``path``."""
    text = read_text_file(path, "schedule file")
    source = str(path)
    spec = parse_job_schedule(text, source)  # checked here first: one line, no upload
    body: dict[str, Any] = {"yaml": text, "source": source}
    job = spec.create_job
    if isinstance(job, dict):  # written inline: its paths are the schedule file's
        body["job"] = prepare_submission(
            http, yaml.safe_dump(job, sort_keys=False), f"{source} (create_job)", path.parent
        )
    elif not job.startswith("azureml:"):
        job_file = (path.parent / job.removeprefix("file:").strip()).resolve()
        body["job"] = prepare_submission(
            http, read_text_file(job_file, "job file"), str(job_file), job_file.parent
        )
    made: dict[str, Any] = http.post("/api/v1/schedules", body)
    return made


def path_of(name: str) -> str:
    return f"/api/v1/schedules/{quote(name, safe='')}"
