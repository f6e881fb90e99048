"""The job status machine: every allowed move works, everything else is refused by name."""

from __future__ import annotations

import itertools

import pytest

from lapis.entities.job_status import ALLOWED, TERMINAL, JobStatus, check_transition
from lapis.errors import InvalidState

HAPPY_PATH = ["NotStarted", "Queued", "Preparing", "Starting", "Running", "Finalizing", "Completed"]


def test_the_happy_path_is_allowed() -> None:
    for a, b in itertools.pairwise(HAPPY_PATH):
        check_transition("j", JobStatus(a), JobStatus(b))


def test_terminal_states_are_final() -> None:
    for end, other in itertools.product(TERMINAL, JobStatus):
        with pytest.raises(InvalidState, match="it has ended"):
            check_transition("j", end, other)


def test_refused_move_names_the_job_and_the_options() -> None:
    with pytest.raises(InvalidState) as err:
        check_transition("brave_owl_12ab", JobStatus.QUEUED, JobStatus.COMPLETED)
    assert "brave_owl_12ab" in err.value.message and "Queued to Completed" in err.value.message
    assert "Preparing" in err.value.message


def test_every_status_has_a_rule_and_an_mlflow_status() -> None:
    assert set(ALLOWED) == set(JobStatus)
    assert JobStatus.CANCELED.mlflow_status == "KILLED"
    assert JobStatus.QUEUED.mlflow_status == "SCHEDULED"
    assert {s.mlflow_status for s in JobStatus} <= {
        "SCHEDULED",
        "RUNNING",
        "FINISHED",
        "FAILED",
        "KILLED",
    }
