"""``distribution:`` and ``limits.max_retries`` in job files: what is kept, and the errors
(with the key's line) for what is not right."""

from __future__ import annotations

import re

import pytest

from lapis.errors import InvalidParameterValue
from lapis.specs.job import parse_job

BASE = "command: python train.py\ncompute: azureml:cpu-cluster\n"


def _job(extra: str) -> object:
    return parse_job(BASE + extra, "job.yml", None)


def test_each_distribution_type_is_kept_as_azure_writes_it() -> None:
    spec = _job("resources:\n  instance_count: 2\ndistribution:\n  type: PyTorch\n"
                "  process_count_per_instance: 4\n")  # fmt: skip
    assert spec.distribution == {"type": "pytorch", "process_count_per_instance": 4}  # type: ignore[attr-defined]
    spec = _job("resources:\n  instance_count: 2\ndistribution:\n  type: tensorflow\n"
                "  worker_count: 2\n  parameter_server_count: 2\n")  # fmt: skip
    assert spec.distribution == {  # type: ignore[attr-defined]
        "type": "tensorflow", "worker_count": 2, "parameter_server_count": 2,
        "process_count_per_instance": 2,
    }  # fmt: skip
    assert _job("").distribution is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("distribution:\n  type: horovod\n", "must be one of mpi, pytorch, tensorflow"),
        ("distribution:\n  type: pytorch\n  worker_count: 2\n", "is not a setting of pytorch"),
        ("distribution:\n  type: mpi\n  process_count_per_instance: 0\n", "at least 1"),
        ("resources:\n  instance_count: 2\ndistribution:\n  type: tensorflow\n"
         "  worker_count: 3\n", "must spread evenly over resources.instance_count (2)"),
        ("distribution: pytorch\n", "must be a mapping with a type"),
        ("limits:\n  max_retries: -1\n", "must be a whole number from 0 to 10"),
        ("limits:\n  retries: 2\n", "is not a valid key of limits"),
    ],
)  # fmt: skip
def test_a_wrong_distribution_is_refused_naming_the_line(extra: str, message: str) -> None:
    with pytest.raises(InvalidParameterValue) as refused:
        _job(extra)
    assert message in str(refused.value)
    assert re.match(r"job\.yml:\d+: ", str(refused.value)), str(refused.value)  # file:line


def test_max_retries_is_kept() -> None:
    assert _job("limits:\n  max_retries: 2\n").max_retries == 2  # type: ignore[attr-defined]
    assert _job("").max_retries == 0  # type: ignore[attr-defined]
