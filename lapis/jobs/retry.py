"""Running a job again after its node was lost, when the job allows it.

A job's ``limits.max_retries`` (a Lapis extension of Azure's ``limits``; 0 by
default) is how many times a job whose node was lost under it — a killed
worker, a pre-empted low-priority node, a head that died — goes back to the
queue instead of failing; on a low-priority cluster a pre-emption allows three
tries even without it, as pre-emption is what such a cluster is for. A node
loss is all that is retried: a job that failed by itself fails.

The count lives in the job's status history (each retry is a ``Queued`` move
whose reason starts ``retry``), so it survives a server restart; the attempt's
logs are kept under ``attempts/<n>/`` in the job folder (staging the next
attempt clears the rest) and uploaded with the job's artifacts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lapis.entities.job_status import JobStatus
from lapis.store.sql.jobs import JobStore
from lapis.util import now_ms

PREEMPTED_TRIES = 3
ATTEMPTS = "attempts"


def tries_so_far(store: JobStore, name: str) -> int:
    job = store.get(name, events=True)
    return sum(
        1
        for e in job.events
        if e.status == JobStatus.QUEUED.value and (e.reason or "").startswith("retry")
    )


def requeue(store: JobStore, folder: Path, name: str, why: str, preempted: bool) -> bool:
    """Queue the job again after ``why`` (its node was lost); False when it has no
    retries left (it then fails with ``why``)."""
    job = store.get(name)
    limit = int(job.spec.get("max_retries") or 0)
    if preempted:
        limit = max(limit, PREEMPTED_TRIES)
    done = tries_so_far(store, name)
    if done >= limit:
        return False
    keep = folder / ATTEMPTS / str(done + 1)
    keep.mkdir(parents=True, exist_ok=True)
    for part in ("user_logs", "system_logs"):
        if (folder / part).is_dir():
            shutil.copytree(folder / part, keep / part, dirs_exist_ok=True)
    # the lost try's force-cancel left a cancel file; the next try must not read it as ours
    (folder / "cancel").unlink(missing_ok=True)
    return store.transition(
        name,
        JobStatus.QUEUED,
        time_ms=now_ms(),
        reason=f"retry {done + 1} of {limit}: {why}",
        handle=None,
    )
