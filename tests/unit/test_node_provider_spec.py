"""A cluster's ``provider:``: the ssh provider's and an attached Ray cluster's settings
kept as given, each mistake refused naming the key; and the ports chosen for Ray's
listeners never handed out twice."""

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
        ({**SSH, "type": "kubernetes"}, 2, "must be local, ssh or ray"),
        ({"type": "ray"}, 2, "must be the Ray cluster's dashboard address"),
        ({"type": "ray", "address": "ftp://h:1"}, 2, "must be an http:// or https://"),
        ({"type": "ray", "address": "h:8265", "hosts": ["a"]}, 2, "not a setting of an attached"),
        ({"type": "ray", "address": "h:8265", "token_file": "t"}, 2, "is read by the lapis CLI"),
        ({"type": "ray", "address": "h:8265", "token": ""}, 2, "must be a non-empty string"),
        (SSH, 3, "lists 2 host(s): one node per host"),
        ("ssh", 2, "must be a mapping with a type"),
    ],
)
def test_a_wrong_provider_is_refused(provider: Any, max_instances: int, message: str) -> None:
    with pytest.raises(InvalidParameterValue) as refused:
        parse_compute({**BASE, "max_instances": max_instances, "provider": provider})
    assert message in str(refused.value), str(refused.value)


def test_an_attached_cluster_is_kept_with_its_address_as_a_url() -> None:
    spec = parse_compute({**BASE, "provider": {"type": "ray", "address": "10.0.0.5:8265/"}})
    assert spec.cluster is not None
    assert spec.cluster.provider == {"type": "ray", "address": "http://10.0.0.5:8265"}
    given = {"type": "ray", "address": "https://ray.example:443", "token": " s3cret "}
    spec = parse_compute({**BASE, "provider": given})
    assert spec.cluster is not None and spec.cluster.provider is not None
    assert spec.cluster.provider["token"] == "s3cret"


def test_ray_ports_are_never_handed_out_twice() -> None:
    """A node's six ports are chosen before Ray binds any: a repeat made a head refuse to
    start ("trying to use a port number ... used by other components")."""
    from lapis.compute.ray.nodes import PORTS, free_port, node_ports

    given = [p for _ in range(300) for p in node_ports().values()] + [free_port()]
    assert len(given) == len(set(given))
    assert all(PORTS[0] <= p < PORTS[1] for p in given)
