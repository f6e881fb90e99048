"""Submitting a job to a cluster's job API: Ray's client, made and used with the retries
a loaded head needs (it refuses, or drops the connection, while its agent starts)."""

from __future__ import annotations

import os
import time
from typing import Any

from lapis.compute.ray.nodes import MEASURED


def entry_env() -> dict[str, Any] | None:
    """The runtime environment a job's entrypoint is submitted with."""
    kept = {k: os.environ[k] for k in MEASURED if k in os.environ}
    return {"env_vars": kept} if kept else None


AGENT_WAIT_S = 60.0


def job_client(url: str, headers: dict[str, str], wait_s: float = AGENT_WAIT_S) -> Any:
    """Ray's job API client for the head at ``url``. Making one asks the head its version;
    a loaded head that refuses or drops that connection is asked again until the agent
    deadline, as a submission is (a job failed on one dropped connection in CI)."""
    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return JobSubmissionClient(url, headers=headers)
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def submit_when_ready(client: Any, **job: Any) -> str:
    """``client.submit_job(**job)``, waiting out a head whose job agent is not up yet.

    A head that has just started (or a loaded host) answers 500 "No available agent to
    submit job, please try again later" for a while; Ray's own advice is to retry. A
    dropped connection is retried too: the submission id makes the retry safe, since a
    submission that did land answers "already exists" and is taken as made. Any other
    refusal is raised at once."""
    deadline = time.monotonic() + AGENT_WAIT_S
    dropped = False
    while True:
        try:
            return str(client.submit_job(**job))
        except RuntimeError as exc:
            said = str(exc)
            if dropped and "already exists" in said and job.get("submission_id"):
                return str(job["submission_id"])
            if "No available agent" not in said or time.monotonic() > deadline:
                raise
        except OSError:  # requests' ConnectionError (RemoteDisconnected, reset) is one
            if time.monotonic() > deadline:
                raise
            dropped = True
        time.sleep(1.0)
