"""Every compute backend against one contract (DESIGN habit 9), plus the registry's rules.

The contract runs real jobs: a supervisor process per job, through nothing but
the ``ComputeBackend`` interface the scheduler uses — launch, poll, logs,
cancel, collect — so a new backend is added to ``BACKENDS`` below and must pass
the same body. The Ray cluster backend (``amlcompute``) runs it on a real Ray
cluster of this module (a head and one worker node, local processes), made once.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lapis.compute.base import ComputeBackend, Feature, LaunchContext, NodeState, Progress
from lapis.compute.instance import InstanceBackend
from lapis.compute.local import LocalBackend
from lapis.compute.registry import BackendRegistry, DuplicateBackend, builtin_registry
from lapis.entities.compute import Compute
from lapis.entities.jobs import Job
from lapis.errors import InvalidParameterValue

BACKENDS: dict[str, Callable[[], ComputeBackend]] = {
    "local": LocalBackend,
    "computeinstance": InstanceBackend,
    "amlcompute": lambda: _RAY[0],
}
_RAY: list[Any] = []  # the Ray backend with its running cluster (the fixture below)


def _compute(type_name: str, name: str | None = None) -> Compute:
    return Compute(name=name or f"c-{type_name}", type=type_name, state="Running", cores=1,
                   memory_gib=1, properties={"min_instances": 1})  # fmt: skip


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A Ray cluster for the contract: a head and one worker (``min_instances: 1``)."""
    pytest.importorskip("ray", reason="NOT TESTED: the Ray backend needs 'lapis[ray]'")
    from lapis.compute.ray import cluster

    before = cluster._ROOT[0]
    cluster.configure(tmp_path_factory.mktemp("clusters") / "clusters")
    backend = cluster.RayClusterBackend()
    c = _compute("amlcompute")
    backend.provision(c)
    deadline = time.monotonic() + 120
    while not (backend.ready(c) and len(backend.observe(c)) == 2):
        assert time.monotonic() < deadline, backend.observe(c)
        time.sleep(0.3)
    _RAY[:] = [backend]
    try:
        yield
    finally:
        backend.delete(c)
        cluster.configure(before)
        _RAY.clear()


def _job(name: str, command: str, **spec: Any) -> Job:
    return Job(
        name=name,
        run_id="0" * 32,
        experiment_id="0",
        seq=1,
        compute="c",
        status="Preparing",
        spec={"command": command, "inputs": {}, "outputs": {}, **spec},
    )


def _launch(backend: ComputeBackend, tmp_path: Path, name: str, command: str, **spec: Any) -> Any:
    ctx = LaunchContext(
        job=_job(name, command, **spec),
        compute=_compute(backend.type_name),
        job_dir=tmp_path / "jobs" / name,
        snapshots=tmp_path / "snapshots",
        python=sys.executable,
        environment={
            "kind": "system",
            "label": "system",
            "python": sys.executable,
            "root": str(tmp_path.parent / "envs"),  # the layered env is made once, shared
        },
        env={"LAPIS_JOB_NAME": name},
    )
    return backend.launch(ctx)


def _until_exited(
    backend: ComputeBackend, handle: Any, timeout: float = 60
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = backend.poll(handle, cursor)
        assert isinstance(progress, Progress)
        cursor = progress.cursor
        seen += progress.events
        if any(e["status"] == "Exited" for e in seen):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"no Exited event in {timeout} s: {seen}")


@pytest.fixture(
    params=[
        # the Ray ones share one worker with every other Ray cluster of the suite (two
        # clusters at once on a 2-core runner starved a head's job API)
        pytest.param(b, marks=pytest.mark.xdist_group("ray-clusters")) if b == "amlcompute" else b
        for b in sorted(BACKENDS)
    ]
)
def backend(request: pytest.FixtureRequest) -> ComputeBackend:
    if request.param == "amlcompute":
        request.getfixturevalue("ray_cluster")
    return BACKENDS[request.param]()


def _supervisor_of(job_dir: Path) -> int:
    """The job's supervisor process, found the same way on every backend (a Ray job's
    handle names the Ray job, not a pid)."""
    import psutil

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for proc in psutil.process_iter(["cmdline"]):
            line = proc.info["cmdline"] or []
            if "lapis.compute.supervisor" in line and str(job_dir) in line:
                return int(proc.pid)
        time.sleep(0.1)
    raise AssertionError(f"no supervisor for {job_dir}")


def test_a_job_runs_and_its_handle_is_plain_json(backend: ComputeBackend, tmp_path: Path) -> None:
    handle = _launch(
        backend, tmp_path, "ok", "echo hello $LAPIS_JOB_NAME; echo out > outputs/x.txt"
    )
    assert json.loads(json.dumps(handle)) == handle  # stored in one JSON column
    events = _until_exited(backend, handle)
    assert [e["status"] for e in events][-1] == "Exited"
    assert events[-1]["outcome"] == "Completed", events
    text, cursor = backend.logs(handle, None)
    assert text == "hello ok\n"
    assert backend.logs(handle, cursor) == ("", cursor)  # nothing twice
    folder = backend.collect(handle)
    assert (folder / "wd" / "outputs" / "x.txt").read_text() == "out\n"
    # a replay from the start (a restarted server) sees the same events
    assert backend.poll(handle, 0).events == events
    deadline = time.monotonic() + 10
    while backend.alive(handle) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not backend.alive(handle)


def test_cancel_is_reported_as_canceled(backend: ComputeBackend, tmp_path: Path) -> None:
    handle = _launch(backend, tmp_path, "slow", "echo started; sleep 60")
    deadline = time.monotonic() + 30
    while "started" not in backend.logs(handle, None)[0]:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    backend.cancel(handle)
    events = _until_exited(backend, handle, timeout=30)
    assert events[-1]["outcome"] == "Canceled"


def test_force_cancel_ends_a_job_whose_supervisor_is_hung(
    backend: ComputeBackend, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import uuid

    marker = f"sleep 6{uuid.uuid4().int % 1000:03d}"
    handle = _launch(backend, tmp_path, "hung", f"echo started; {marker}")
    deadline = time.monotonic() + 30
    while "started" not in backend.logs(handle, None)[0]:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    supervisor = _supervisor_of(tmp_path / "jobs" / "hung")
    os.kill(supervisor, signal.SIGSTOP)  # a supervisor that no longer answers
    backend.cancel(handle, force=True)
    assert not backend.alive(handle)
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert left.stdout.strip() == "", "the job's command outlived a forced cancel"


def test_lifecycle_and_observe(backend: ComputeBackend) -> None:
    c = _compute(backend.type_name, "c-life")
    backend.provision(c)
    backend.start(c)
    deadline = time.monotonic() + 60  # a cluster's head answers a moment after it starts
    while not backend.ready(c):
        assert time.monotonic() < deadline, backend.observe(c)
        time.sleep(0.2)
    nodes = backend.observe(c)
    assert nodes and all(isinstance(n, NodeState) for n in nodes)
    backend.stop(c)
    backend.delete(c)


def test_capabilities_carry_reasons(backend: ComputeBackend) -> None:
    """What a compute cannot run is said with the reason; a job asking for more nodes than
    it can have is refused before it runs, naming the number (a one-node compute: use a
    cluster; a cluster of at most one node: raise max_instances)."""
    c = _compute(backend.type_name)
    missing = backend.capabilities(c)
    if Feature.MULTI_NODE in missing:
        assert "cluster" in missing[Feature.MULTI_NODE]

    class Spec:
        instance_count = 2

    reason = backend.unsupported(c, Spec())
    assert reason is not None and ("instance_count=2" in reason or "2 nodes" in reason), reason


# --- the registry ------------------------------------------------------------------------
def test_unknown_type_names_the_known_ones_and_the_closest() -> None:
    registry = builtin_registry()
    with pytest.raises(InvalidParameterValue) as err:
        registry.get("computeinstanse")
    assert "did you mean 'computeinstance'" in err.value.message
    assert "known: amlcompute, computeinstance, local" in err.value.message


def test_a_name_is_registered_once() -> None:
    registry = builtin_registry()
    with pytest.raises(DuplicateBackend, match="already provided by built-in"):
        registry.register(LocalBackend(), "plug-in 'x'")
    assert isinstance(registry.get("local"), LocalBackend)


PLUGIN = '''
from typing import ClassVar
from lapis.compute.local import LocalBackend


class HostTwo(LocalBackend):
    type_name: ClassVar[str] = "hosttwo"


class Impostor(LocalBackend):
    """Claims a built-in's name: must be refused, not replace it."""
'''


def _install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entries: str) -> None:
    """A real installed distribution (dist-info with entry points) on sys.path."""
    site = tmp_path / "site"
    (site / "lapis_test_plugin.py").parent.mkdir(parents=True)
    (site / "lapis_test_plugin.py").write_text(PLUGIN)
    info = site / "lapis_test_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lapis-test-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entries))
    monkeypatch.syspath_prepend(str(site))


def test_plugins_add_types_through_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_plugin(
        tmp_path,
        monkeypatch,
        """
        [lapis.compute_backends]
        hosttwo = lapis_test_plugin:HostTwo
        local = lapis_test_plugin:Impostor
        broken = lapis_test_plugin:DoesNotExist
        """,
    )
    registry = builtin_registry()
    registry.load_plugins()
    assert registry.names() == ["amlcompute", "computeinstance", "hosttwo", "local"]
    assert registry.origin("hosttwo") == "plug-in 'lapis_test_plugin:HostTwo'"
    assert type(registry.get("local")) is LocalBackend  # the built-in stays
    refused = " | ".join(registry.refused)
    assert "local:" in refused and "broken:" in refused


def test_registry_is_empty_until_told() -> None:
    assert BackendRegistry().names() == []
