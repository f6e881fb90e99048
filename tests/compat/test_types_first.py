"""Azure-shaped files of types Lapis does not run yet get one line naming the type.

Each file under files/ is written in the shape Azure ML documents for its type
(sweep, AutoML and Spark jobs; attached VM and Synapse
computes). Lapis must read ``type`` (or the ``$schema`` file name) before any
other key: the answer names the type and what Lapis runs, at ``type``'s line —
never "'jobs' is not a valid key of a command job".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jobkit import lapis_cli

from lapis.errors import InvalidParameterValue
from lapis.specs.compute import parse_compute
from lapis.specs.job import parse_job
from lapis.specs.yaml_lines import load

FILES = Path(__file__).parent / "files"


@pytest.mark.parametrize(
    ("name", "line", "kind"),
    [
        ("sweep.yml", 2, "sweep"),
        ("automl.yml", 2, "automl"),
        ("spark.yml", 2, "spark"),
        ("sweep-by-schema.yml", 2, "sweep"),  # no type: the $schema line says it
    ],
)
def test_job_types_are_read_first(name: str, line: int, kind: str) -> None:
    path = FILES / "jobs" / name
    with pytest.raises(InvalidParameterValue) as err:
        parse_job(path.read_text(), str(path))
    message = err.value.message
    assert message.startswith(f"{path}:{line}: {kind} jobs are not supported yet"), message
    assert message.endswith("supported: command") and "valid key" not in message


@pytest.mark.parametrize(
    ("name", "kind"),
    [("vm.yml", "virtualmachine"), ("synapse.yml", "synapsespark")],
)
def test_compute_types_are_read_first(name: str, kind: str) -> None:
    path = FILES / "compute" / name
    with pytest.raises(InvalidParameterValue) as err:
        parse_compute(load(path.read_text(), str(path)))
    message = err.value.message
    assert message.startswith(f"{path}:3: {kind} computes are not supported yet"), message
    assert message.endswith("supported: computeinstance, amlcompute") and "setting" not in message


def test_unknown_types_list_azures_with_a_did_you_mean() -> None:
    with pytest.raises(InvalidParameterValue) as err:
        parse_job("type: comand\ncommand: echo\n", "j.yml")
    assert err.value.message.startswith("j.yml:1: 'comand' is not an Azure ML job type")
    assert "did you mean 'command'" in err.value.message
    with pytest.raises(InvalidParameterValue) as err:
        parse_compute(load("name: abc\ntype: amlcomptue\n", "c.yml"))
    assert "did you mean 'amlcompute'" in err.value.message
    assert "Lapis runs: computeinstance, amlcompute" in err.value.message
    with pytest.raises(InvalidParameterValue, match=r"c\.yml:1: 'type' is required"):
        parse_compute(load("name: abc\nsize: Standard_DS1_v2\n", "c.yml"))


def test_the_cli_says_it_in_one_line(lapis_server: Any) -> None:
    # a pipeline runs (tests/compat/test_pipelines.py); this one names a cluster that is
    # not there: refused before any step runs
    done = lapis_cli(lapis_server, "job", "create", "-f", str(FILES / "jobs" / "pipeline.yml"))
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "settings.default_compute: compute 'cpu-cluster' does not exist" in done.stderr
    for args in (
        ["job", "create", "-f", str(FILES / "jobs" / "sweep.yml")],
        ["compute", "create", "-f", str(FILES / "compute" / "vm.yml")],
    ):
        done = lapis_cli(lapis_server, *args)
        assert done.returncode == 1, done
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "not supported yet" in lines[0], done.stderr
        assert "Traceback" not in done.stderr
