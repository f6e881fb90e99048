"""Command jobs written the way Azure ML users write them run unchanged.

Each job file under files/jobs is in Azure's commandJob shape; it is checked
locally (as ``lapis job create`` does before anything is uploaded) and then run
on a real server, and what the job printed shows what its command became.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jobkit import log_text, submit, wait

from lapis.specs.job import parse_job, render_command

FILES = Path(__file__).parent / "files" / "jobs"


def test_optional_segments_of_undeclared_inputs_are_dropped(lapis_server: Any) -> None:
    path = FILES / "optional-segments.yml"
    spec = parse_job(path.read_text(), str(path))
    assert "seed" not in spec.inputs and spec.inputs["epochs"].optional
    dropped = render_command(spec.command, {"lr": "0.01", "epochs": None}, {})
    assert dropped.split() == ["python", "show_args.py", "--lr", "0.01"]
    assert render_command(spec.command, {"lr": "1", "seed": "7"}, {}).split()[-2:] == [
        "--seed",
        "7",
    ]
    job = submit(lapis_server, path)
    done = wait(lapis_server, job["name"], timeout=120)
    assert done["status"] == "Completed", log_text(lapis_server, job["name"])
    assert "lr=0.01 seed=None epochs=None" in log_text(lapis_server, job["name"])


@pytest.mark.parametrize(
    ("file", "expected", "environment"),
    [
        (
            "digits-sklearn.yml",
            "model saved to",
            "lapis-sklearn:1 (for AzureML-sklearn-1.5@latest)",
        ),
        ("digits-registry.yml", "model saved to", "lapis-sklearn:1 (for sklearn-1.5@latest)"),
        ("lightgbm.yml", "accuracy 0.9", "lapis-lightgbm:1 (for AzureML-lightgbm-3.3:12)"),
        (
            "minimal.yml",
            "logged with mlflow 3.17.2",
            "lapis-minimal:1 (for AzureML-minimal-ubuntu22.04-py39-cpu-inference@latest)",
        ),
    ],
)
def test_jobs_run_in_the_stand_ins_for_azures_curated_environments(
    lapis_server: Any, file: str, expected: str, environment: str
) -> None:
    """Each curated environment is built (pinned, by uv) and runs a training job that saves
    its model with MLflow — the digits example in the scikit-learn one."""
    job = submit(lapis_server, FILES / file)
    done = wait(lapis_server, job["name"], timeout=600)
    log = log_text(lapis_server, job["name"])
    assert done["status"] == "Completed", log
    assert expected in log
    assert done["environment"] == environment


def test_a_conda_file_asking_for_an_older_python_gets_it(lapis_server: Any) -> None:
    """python=3.9 in the conda file: found among pyenv's versions (uv alone does not look
    there unless pyenv's shims are switched on), or downloaded by uv."""
    from lapis.environments.builder import installed_pythons

    if "3.9" not in installed_pythons():
        pytest.skip("NOT TESTED: this host has no Python 3.9 (CI has pyenv's)")
    job = submit(lapis_server, FILES / "py39" / "job.yml")
    done = wait(lapis_server, job["name"], timeout=300)
    log = log_text(lapis_server, job["name"])
    assert done["status"] == "Completed", log
    assert "python 3 9 six 1.16.0" in log
