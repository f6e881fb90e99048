"""A cluster's ``provider:``: the ssh provider's and an attached Ray cluster's settings
kept as given, each mistake refused naming the key; and the ports chosen for Ray's
listeners never handed out twice."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
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


def test_rays_daemons_go_without_the_coverage_hook_and_a_jobs_entrypoint_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node's processes are started by ``spawn``: the one here prints the environment it
    was given. The hook doubled a node's start on a loaded host and nodes died in a loop."""
    from lapis.compute.ray import nodes as ray_nodes
    from lapis.compute.ray import submit as ray_submit

    monkeypatch.setenv("COVERAGE_PROCESS_CONFIG", "probe-config")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "the-servers-own")
    dump = "import json, os; print(json.dumps(dict(os.environ)))"
    node = ray_nodes.spawn(tmp_path, [sys.executable, "-c", dump], "probe", {"EXTRA": "1"})
    deadline = time.monotonic() + 30
    while ray_nodes.alive(node) and time.monotonic() < deadline:
        time.sleep(0.05)
    given = json.loads((tmp_path / "probe.log").read_text())
    assert "COVERAGE_PROCESS_CONFIG" not in given and "RAY_AUTH_TOKEN" not in given
    assert given["EXTRA"] == "1" and given["RAY_AUTH_MODE"] == "token"
    assert given["RAY_AUTH_TOKEN_PATH"] == str(tmp_path / ray_nodes.TOKEN_FILE)
    assert ray_submit.entry_env() == {"env_vars": {"COVERAGE_PROCESS_CONFIG": "probe-config"}}
    monkeypatch.delenv("COVERAGE_PROCESS_CONFIG")
    assert ray_submit.entry_env() is None


def test_nodes_of_this_host_start_one_after_another(tmp_path: Path) -> None:
    """A node holds the next back until its ``ray start`` says it is up (what an earlier
    node of the same index wrote to the log does not count), or it ended."""
    from lapis.compute.ray import nodes as ray_nodes

    log = tmp_path / "worker-0.log"
    log.write_bytes(b"Ray runtime started. (a node of the same index, before a restart)\n")
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    node = ray_nodes.spawn(tmp_path, sleeper, "worker-0", {})
    node.update(index=0, started_at=time.time(), log_at=log.stat().st_size)
    state: dict[str, Any] = {"workers": [node] * ray_nodes.STARTS_AT_ONCE}
    try:
        assert not ray_nodes.joined(node, tmp_path)
        assert not ray_nodes.may_start(state, tmp_path)
        with log.open("ab") as out:
            out.write(b"SUCC scripts.py:1251 -- Ray runtime started.\n")
        assert ray_nodes.joined(node, tmp_path) and ray_nodes.may_start(state, tmp_path)
        node.pop("joined")
        node["started_at"] = time.time() - ray_nodes.JOIN_WAIT_S - 1  # stuck: not waited on
        log.write_bytes(b"")
        assert ray_nodes.may_start(state, tmp_path)
    finally:
        ray_nodes.kill(node, tmp_path)
