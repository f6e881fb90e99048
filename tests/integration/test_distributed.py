"""Distributed training on a compute cluster: ``resources.instance_count`` nodes of
``distribution.process_count_per_instance`` processes, gang-scheduled on Ray, with the
variables Azure ML sets. The job files are the Azure-shaped ones in
tests/compat/files/distributed; the PyTorch one really all-reduces over gloo."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from clusterkit import (
    made_cluster,
    nodes,
    one_store,  # noqa: F401  (the module's lapis_server: SQLite)
    until,
)
from jobkit import get, lapis_cli, log_text, submit, wait

pytest.importorskip(
    "ray", reason="NOT TESTED: compute clusters need Ray (pip install 'lapis[ray]')"
)
pytestmark = [pytest.mark.timeout(900), pytest.mark.xdist_group("ray-clusters")]


FILES = Path(__file__).resolve().parents[1] / "compat" / "files" / "distributed"


@pytest.fixture(scope="module")
def pair(lapis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A cluster of 0..2 nodes, shared by this module's tests (a head costs seconds)."""
    with made_cluster(lapis_server, tmp_path_factory.mktemp("pair"), max_instances=2) as name:
        yield name


def _job_file(tmp_path: Path, name: str, cluster: str, **replace: str) -> Path:
    folder = tmp_path / "job"
    if not folder.exists():
        shutil.copytree(FILES, folder)
    path = folder / name
    text = path.read_text().replace("cpu-cluster", cluster)
    for old, new in replace.items():
        text = text.replace(old, new)
    path.write_text(text)
    return path


def test_a_pytorch_job_all_reduces_over_two_nodes_from_zero(
    lapis_server: Any, pair: str, tmp_path: Path
) -> None:
    pytest.importorskip("torch", reason="NOT TESTED: pip install torch==2.13.0 (CPU build)")
    assert [n["name"] for n in nodes(lapis_server, pair)] == [f"{pair}-head"]
    job = submit(lapis_server, _job_file(tmp_path, "pytorch-job.yml", pair))
    done = wait(lapis_server, job["name"], timeout=480)
    log = log_text(lapis_server, job["name"])
    assert done["status"] == "Completed", (done["status_reason"], log)
    # the interface each rank was given holds the address its node joined the cluster with
    address, interface = re.search(r"node 0 is \S+ at ([\d.]+) \((\w+)\)", log).groups()  # type: ignore[union-attr]
    held = {a.address for a in psutil.net_if_addrs()[interface] if a.family == socket.AF_INET}
    assert address in held
    for rank in (0, 1):  # every rank's line, through the job's one log
        assert f"[rank {rank}] rank {rank} of 2 (node {rank}, local 0, {interface}): sum 3" in log
    folder = lapis_server.home / "jobs" / job["name"]
    assert "rank 1 of 2" in (folder / "user_logs" / "std_log_process_1.txt").read_text()
    events = (folder / "events.jsonl").read_text()
    assert f"starting 2 of 2 nodes of cluster {pair}" in events
    said = [(e["status"], e["reason"] or "") for e in done["events"]]
    assert ("Provisioning", f"starting 2 of 2 nodes of cluster {pair}") in said, said
    with lapis_server.client() as http:
        run = http.get(f"/api/v1/runs/{done['run_id']}").json()
    assert run["metrics"]["allreduce_sum"]["value"] == 3.0
    until(  # both nodes go once the cluster has been idle for 2 s
        "scale-down to zero",
        lambda: (
            [n["name"] for n in nodes(lapis_server, pair) if n["state"] != "Lost"]
            == [f"{pair}-head"]
        ),
        timeout=90,
        detail=lambda: (nodes(lapis_server, pair), _ray_jobs(lapis_server, pair)),
    )


def test_mpi_and_tensorflow_jobs_get_their_variables(
    lapis_server: Any, pair: str, tmp_path: Path
) -> None:
    mpi = submit(lapis_server, _job_file(tmp_path, "mpi-job.yml", pair))
    done = wait(lapis_server, mpi["name"], timeout=480)
    log = log_text(lapis_server, mpi["name"])
    assert done["status"] == "Completed", (done["status_reason"], log)
    for rank in range(4):  # 2 nodes x 2 processes; node 0 holds ranks 0 and 1
        assert f"[rank {rank}] mpi rank {rank} of 4 local {rank % 2} of 2 master " in log
    tf = submit(lapis_server, _job_file(tmp_path, "tensorflow-job.yml", pair))
    done = wait(lapis_server, tf["name"], timeout=480)
    log = log_text(lapis_server, tf["name"])
    assert done["status"] == "Completed", (done["status_reason"], log)
    assert "[rank 0] tf worker 0 2" in log and "[rank 1] tf worker 1 2" in log


def test_the_first_failing_rank_ends_the_gang(lapis_server: Any, pair: str, tmp_path: Path) -> None:
    marker = f"sleep 2{uuid.uuid4().int % 1000:03d}"
    command = f'if [ "$RANK" = 1 ]; then echo rank one gives up; exit 3; fi; {marker}'
    path = _job_file(tmp_path, "mpi-job.yml", pair, **{"process_count_per_instance: 2":
                     "process_count_per_instance: 1"})  # fmt: skip
    text = path.read_text()
    start = text.index("command:")
    end = text.index("environment:")
    path.write_text(text[:start] + f"command: '{command}'\n" + text[end:])
    job = submit(lapis_server, path)
    done = wait(lapis_server, job["name"], timeout=480)
    assert done["status"] == "Failed"
    reason = done["status_reason"]
    assert "rank 1 (node 1) failed with exit code 3" in reason, reason
    assert "rank one gives up" in reason  # that rank's own last lines
    until(
        "rank 0's command to be ended",
        lambda: subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode != 0,
        timeout=30,
    )


def test_more_nodes_than_the_cluster_may_have_is_refused_at_submit(
    lapis_server: Any, pair: str, tmp_path: Path
) -> None:
    path = _job_file(tmp_path, "mpi-job.yml", pair, **{"instance_count: 2": "instance_count: 3"})
    done = lapis_cli(lapis_server, "job", "create", "-f", str(path))
    assert done.returncode != 0
    message = done.stderr + done.stdout
    assert "asks for 3 nodes" in message and "at most 2 (max_instances)" in message, message
    assert "Traceback" not in message


def test_cancel_ends_every_rank_on_every_node(lapis_server: Any, pair: str, tmp_path: Path) -> None:
    marker = f"sleep 3{uuid.uuid4().int % 1000:03d}"
    path = _job_file(tmp_path, "mpi-job.yml", pair)
    text = path.read_text()
    start, end = text.index("command:"), text.index("environment:")
    path.write_text(text[:start] + f"command: echo up $RANK && {marker}\n" + text[end:])
    job = submit(lapis_server, path)
    until(
        "all four ranks to start",
        lambda: all(f"[rank {r}] up {r}" in log_text(lapis_server, job["name"]) for r in range(4)),
        timeout=480,
        detail=lambda: (get(lapis_server, job["name"]), log_text(lapis_server, job["name"])),
    )
    assert lapis_cli(lapis_server, "job", "cancel", job["name"]).returncode == 0
    assert wait(lapis_server, job["name"], timeout=120)["status"] == "Canceled"
    until(
        "every rank's command to be ended",
        lambda: subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode != 0,
        timeout=30,
    )


def test_a_lost_node_ends_the_gang_naming_it(lapis_server: Any, pair: str, tmp_path: Path) -> None:
    marker = f"sleep 4{uuid.uuid4().int % 1000:03d}"
    path = _job_file(tmp_path, "mpi-job.yml", pair, **{"process_count_per_instance: 2":
                     "process_count_per_instance: 1"})  # fmt: skip
    text = path.read_text()
    start, end = text.index("command:"), text.index("environment:")
    path.write_text(text[:start] + f"command: echo up $RANK && {marker}\n" + text[end:])
    job = submit(lapis_server, path)
    until(
        "both ranks to start",
        lambda: all(f"[rank {r}] up {r}" in log_text(lapis_server, job["name"]) for r in (0, 1)),
        timeout=480,
    )
    found = re.search(r"node 1 is (\S+)-(\d+) at", log_text(lapis_server, job["name"]))
    assert found, log_text(lapis_server, job["name"])
    index = int(found.group(2))
    state = json.loads((lapis_server.home / "clusters" / pair.lower() / "state.json").read_text())
    (node,) = [w for w in state["workers"] if w["index"] == index]
    os.killpg(int(node["pid"]), signal.SIGKILL)  # the whole node: ray start, raylet, workers
    done = wait(lapis_server, job["name"], timeout=120)
    assert done["status"] == "Failed"
    assert f"node {pair}-{index} was lost" in done["status_reason"], done["status_reason"]
    until(
        "every rank's command to be ended",
        lambda: subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode != 0,
        timeout=30,
    )


def test_an_azure_style_script_submits_a_distributed_job(lapis_server: Any, pair: str) -> None:
    """azure-ai-ml's shape: ``command(..., instance_count=2, distribution=...)``, with the
    distribution as an object and as the dict Azure's samples also write."""
    from lapis.ml import MLClient, MpiDistribution, command

    with MLClient(lapis_server.url, lapis_server.token) as ml:
        for distribution in (
            MpiDistribution(process_count_per_instance=1),
            {"type": "MPI", "process_count_per_instance": 1},
        ):
            echo = "echo sdk rank $OMPI_COMM_WORLD_RANK of $OMPI_COMM_WORLD_SIZE"
            built = command(command=echo, environment="system", compute=pair,
                            instance_count=2, distribution=distribution)  # fmt: skip
            job = ml.jobs.create_or_update(built)
            final = ml.jobs.stream(job.name, out=open(os.devnull, "w"))  # noqa: SIM115
            assert final.status == "Completed", final.status_reason
            log = log_text(lapis_server, job.name)
            assert "[rank 1] sdk rank 1 of 2" in log, log


def test_a_batch_invocation_spreads_over_the_deployments_nodes(
    lapis_server: Any, pair: str, tmp_path: Path
) -> None:
    """Azure's batch files with ``compute: azureml:<cluster>`` and ``instance_count: 2``:
    one driver per node, each with its share of the mini-batches, one output in order."""
    from jobkit import batch_predictions

    folder = tmp_path / "batch"
    shutil.copytree(FILES.parent / "batch", folder)
    endpoint = f"sp-x{uuid.uuid4().hex[:6]}"
    for yml in folder.glob("*.yml"):
        text = yml.read_text().replace("compat-batch", endpoint)
        text = text.replace("compute: local", f"compute: azureml:{pair}")
        text = text.replace("instance_count: 1", "instance_count: 2")
        yml.write_text(text.replace("mini_batch_size: 2", "mini_batch_size: 1"))
    assert lapis_cli(lapis_server, "batch-endpoint", "create", "-f",
                     str(folder / "endpoint.yml")).returncode == 0  # fmt: skip
    try:
        made = lapis_cli(lapis_server, "batch-deployment", "create", "-f",
                         str(folder / "deployment.yml"), "--set-default")  # fmt: skip
        assert made.returncode == 0, made.stderr
        done = lapis_cli(lapis_server, "batch-endpoint", "invoke", "-n", endpoint, "--input",
                         str(folder / "data"), "--stream", "-o", "json", timeout=360)  # fmt: skip
        job = json.loads(done.stdout)
        log = log_text(lapis_server, job["name"])
        assert job["status"] == "Completed", (job["status_reason"], log)
        assert "[rank 1] " in log and "node 1 of 2: 1 mini-batches scored" in log, log
        assert "merged 2 nodes' shares: 3 files" in log, log
        rows = batch_predictions(lapis_server, job["name"], tmp_path / "dl")
        assert rows == ["n1.txt,3", "n2.txt,6", "n3.txt,9"]  # input order, across nodes
    finally:
        lapis_cli(lapis_server, "batch-endpoint", "delete", "-n", endpoint, "--yes")


def _ray_jobs(server: Any, cluster: str) -> Any:
    """What the cluster's Ray says of its jobs (for a failure's message)."""
    import urllib.request

    folder = server.home / "clusters" / cluster.lower()
    port = json.loads((folder / "state.json").read_text())["dashboard_port"]
    token = (folder / "auth_token").read_text().strip()
    asked = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/jobs/", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(asked, timeout=10) as answer:
        return [(j.get("submission_id"), j.get("status")) for j in json.load(answer)]
