"""A cluster's ``provider:``: the ssh provider's settings kept as given, and each mistake
refused naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from lapis.errors import InvalidParameterValue
from lapis.specs.compute import parse_compute

BASE: dict[str, Any] = {"name": "lab", "type": "amlcompute", "max_instances": 2}
SSH: dict[str, Any] = {"type": "ssh", "head_address": "10.0.0.1", "hosts": ["10.0.0.11", "b"]}


def test_the_ssh_provider_is_kept_with_the_scale() -> None:
    spec = parse_compute({**BASE, "provider": {**SSH, "user": "lapis"}})
    assert spec.cluster is not None
    assert spec.cluster.as_properties()["provider"] == {**SSH, "user": "lapis"}
    local = parse_compute({**BASE, "provider": {"type": "local"}})
    assert local.cluster is not None and "provider" not in local.cluster.as_properties()


@pytest.mark.parametrize(
    ("provider", "max_instances", "message"),
    [
        ({**SSH, "hosts": []}, 1, "must list at least one host"),
        ({**SSH, "head_address": "127.0.0.1"}, 2, "not loopback"),
        ({**SSH, "hosts": ["a", "a"]}, 1, "lists a host twice"),
        ({**SSH, "port": 22}, 2, "is not a setting of the ssh provider"),
        ({**SSH, "type": "kubernetes"}, 2, "must be local or ssh"),
        (SSH, 3, "lists 2 host(s): one node per host"),
        ("ssh", 2, "must be a mapping with a type"),
    ],
)
def test_a_wrong_provider_is_refused(provider: Any, max_instances: int, message: str) -> None:
    with pytest.raises(InvalidParameterValue) as refused:
        parse_compute({**BASE, "max_instances": max_instances, "provider": provider})
    assert message in str(refused.value), str(refused.value)
