"""Replaying what a job's SDK spooled to disk while the server was away.

When the server could not be reached for longer than the SDK's retry window,
the job's metric writer (:mod:`lapis.sdk.writer`) writes each unsent batch to
``<job folder>/spool/<run_id>.<time>.<pid>.<n>.json`` and carries on. Whatever
it could not resend before the job ended is recorded here, when the scheduler
finalizes the job — so an outage loses no acknowledged-by-disk point. Batches
are idempotent (the store ignores a point it already has), so a batch sent and
also left on disk is harmless.

A spool file is the job's own writing, so it is held to the job token's reach:
only the job's run, or runs it started (tagged ``lapis.job``), are written.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from lapis.entities.auth import JOB_TAG
from lapis.entities.jobs import Job
from lapis.errors import LapisError
from lapis.tracking.columnar import parse_log_body
from lapis.tracking.service import TrackingService

log = logging.getLogger("lapis.jobs")


def replay_spool(tracking: TrackingService, job: Job, folder: Path) -> int:
    """Record every spooled batch of ``job``; returns how many points were written."""
    if not folder.is_dir():
        return 0
    written = 0
    for path in sorted(folder.glob("*.json")):
        run_id = path.name.split(".", 1)[0]
        try:
            if run_id != job.run_id:
                run = tracking.get_run(run_id)
                if run.tags.get(JOB_TAG) != job.name:
                    log.warning(
                        "job %s spooled writes to run %s, not its own; ignored", job.name, run_id
                    )
                    path.unlink()
                    continue
            body = parse_log_body(json.loads(path.read_bytes()))
            written += tracking.log_columns(
                run_id,
                body.keys,
                body.values,
                body.steps,
                body.timestamps,
                body.params,
                body.tags,
            )
        except (LapisError, ValueError) as exc:
            log.warning(
                "spooled batch %s of job %s could not be recorded: %s", path.name, job.name, exc
            )
        path.unlink(missing_ok=True)
    return written
