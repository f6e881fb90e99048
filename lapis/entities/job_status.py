"""The job status machine, with Azure ML's status names.

Who moves a job where:
- the **service** creates it (``NotStarted``) and queues it (``Queued``) on its compute;
- the **scheduler** of that compute takes it from the queue (``Preparing`` while its
  environment is built, then ``Starting``); on a cluster a job whose nodes are still
  starting is ``Provisioning`` meanwhile (with "starting k of N nodes");
- the **supervisor** process reports ``Running``, ``Finalizing`` (uploading outputs) and
  the end: ``Completed`` or ``Failed``;
- a **user** asks to cancel (``CancelRequested``); the supervisor confirms ``Canceled``;
- the **server's reconciler** marks ``NotResponding`` when a supervisor's heartbeat
  stops, and moves the job on when the heartbeat or a final record reappears.

Any move not in ``ALLOWED`` is a bug or a race, and raises instead of being stored.
"""

from __future__ import annotations

import enum

from lapis.errors import InvalidState


class JobStatus(str, enum.Enum):
    NOT_STARTED = "NotStarted"
    QUEUED = "Queued"
    PREPARING = "Preparing"
    PROVISIONING = "Provisioning"
    STARTING = "Starting"
    RUNNING = "Running"
    FINALIZING = "Finalizing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCEL_REQUESTED = "CancelRequested"
    CANCELED = "Canceled"
    NOT_RESPONDING = "NotResponding"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def mlflow_status(self) -> str:
        """The status of the job's MLflow run, for clients that only know runs."""
        if self is JobStatus.COMPLETED:
            return "FINISHED"
        if self is JobStatus.FAILED:
            return "FAILED"
        if self is JobStatus.CANCELED:
            return "KILLED"
        if self in (JobStatus.NOT_STARTED, JobStatus.QUEUED):
            return "SCHEDULED"
        return "RUNNING"


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})
_S = JobStatus
_ACTIVE = (_S.PREPARING, _S.PROVISIONING, _S.STARTING, _S.RUNNING, _S.FINALIZING)
ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    # straight to Completed: a pipeline step reused from an earlier job (lapis/jobs/reuse.py)
    _S.NOT_STARTED: frozenset({_S.QUEUED, _S.FAILED, _S.CANCELED, _S.COMPLETED}),
    _S.QUEUED: frozenset({_S.PREPARING, _S.STARTING, _S.FAILED, _S.CANCEL_REQUESTED, _S.CANCELED}),
    # a job whose node was lost may go back to Queued (lapis/jobs/retry.py)
    _S.PREPARING: frozenset(
        {_S.PROVISIONING, _S.STARTING, _S.FAILED, _S.CANCEL_REQUESTED, _S.NOT_RESPONDING}
    ),
    _S.PROVISIONING: frozenset(
        {_S.PREPARING, _S.STARTING, _S.QUEUED, _S.FAILED, _S.CANCEL_REQUESTED, _S.NOT_RESPONDING}
    ),
    _S.STARTING: frozenset(
        {_S.RUNNING, _S.QUEUED, _S.FAILED, _S.CANCEL_REQUESTED, _S.NOT_RESPONDING}
    ),
    _S.RUNNING: frozenset(
        {_S.FINALIZING, _S.COMPLETED, _S.QUEUED, _S.FAILED, _S.CANCEL_REQUESTED, _S.NOT_RESPONDING}
    ),
    _S.FINALIZING: frozenset({_S.COMPLETED, _S.FAILED, _S.CANCEL_REQUESTED, _S.NOT_RESPONDING}),
    _S.CANCEL_REQUESTED: frozenset({_S.CANCELED, _S.FAILED, _S.COMPLETED, _S.NOT_RESPONDING}),
    _S.NOT_RESPONDING: frozenset(
        {*_ACTIVE, _S.QUEUED, _S.COMPLETED, _S.FAILED, _S.CANCELED, _S.CANCEL_REQUESTED}
    ),
    _S.COMPLETED: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELED: frozenset(),
}


def check_transition(job: str, current: JobStatus, new: JobStatus) -> None:
    if new not in ALLOWED[current]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED[current])) or "none (it has ended)"
        raise InvalidState(
            f"Job {job} cannot go from {current.value} to {new.value}; allowed next: {allowed}"
        )
