"""Jobs in built environments: one build per spec, cache hits, and build failures explained."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from jobkit import lapis_cli, log_text, submit, wait, write_job

CONDA = """\
name: tiny
dependencies:
  - python
  - pip
  - pip:
    - six==1.16.0
"""


def test_same_new_environment_is_built_once(lapis_server: Any, tmp_path: Path) -> None:
    job_file = write_job(
        tmp_path,
        """\
        command: python -c "import six, sys; print('six', six.__version__, sys.prefix)"
        environment:
          image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04
          conda_file: conda.yml
        """,
        {"conda.yml": CONDA},
    )
    names: list[str] = []
    threads = [
        threading.Thread(target=lambda: names.append(submit(lapis_server, job_file)["name"]))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = [wait(lapis_server, n, timeout=240) for n in names]
    assert [d["status"] for d in done] == ["Completed", "Completed"], [
        d["status_reason"] for d in done
    ]
    logs = [log_text(lapis_server, n) for n in names]
    assert all("six 1.16.0" in text for text in logs)
    built = [text for text in logs if "Built environment" in text]
    reused = [text for text in logs if "Reused cached environment" in text]
    assert len(built) == 1 and len(reused) == 1, logs
    assert done[0]["image"] == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04"
    third = wait(lapis_server, submit(lapis_server, job_file)["name"], timeout=60)
    assert third["status"] == "Completed"
    assert "Reused cached environment" in log_text(lapis_server, third["name"])
    statuses = [e["status"] for e in third["events"]]
    assert statuses.count("Preparing") == 1


def test_broken_environment_fails_the_job_with_the_build_log(
    lapis_server: Any, tmp_path: Path
) -> None:
    job_file = write_job(
        tmp_path,
        """\
        command: echo never runs
        environment:
          conda_file:
            dependencies:
              - pip:
                - lapis-no-such-package-zzz==9.9.9
        """,
    )
    name = submit(lapis_server, job_file)["name"]
    done = wait(lapis_server, name, timeout=120)
    assert done["status"] == "Failed"
    assert "environment build failed" in done["status_reason"]
    assert "lapis-no-such-package-zzz" in done["status_reason"]
    streamed = lapis_cli(lapis_server, "job", "stream", name)
    assert streamed.returncode == 1
    assert "lapis-no-such-package-zzz" in streamed.stdout  # the build log, streamed
    assert "never runs" not in streamed.stdout


def test_curated_and_missing_environments(lapis_server: Any, tmp_path: Path) -> None:
    job_file = write_job(tmp_path, "command: echo hi\nenvironment: azureml:lapis-minimall@latest\n")
    res = lapis_cli(lapis_server, "job", "create", "-f", str(job_file))
    assert res.returncode == 1
    assert "lapis-minimal" in res.stderr  # did you mean


def test_environment_from_a_file_reference(lapis_server: Any, tmp_path: Path) -> None:
    job_file = write_job(
        tmp_path,
        """\
        command: python -c "import six; print('six from file env', six.__version__)"
        environment: file:env/env.yml
        """,
        {
            "env/env.yml": "image: python:3.11-slim\nconda_file: conda.yml\n",
            "env/conda.yml": CONDA,
        },
    )
    done = wait(lapis_server, submit(lapis_server, job_file)["name"], timeout=240)
    assert done["status"] == "Completed", done["status_reason"]
    assert done["image"] == "python:3.11-slim"
    assert "six from file env 1.16.0" in log_text(lapis_server, done["name"])
