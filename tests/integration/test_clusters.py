"""Compute clusters (``type: amlcompute``) on Ray, worker nodes as local processes: a job
on a cluster scaled from zero (logs, metrics, outputs), scale-down after the idle time,
cancel, and delete leaving no Ray process behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clusterkit import cancel_all, json_cli, made_cluster, nodes, started, studio_state, until
from jobkit import get, lapis_cli, log_text, submit, wait

pytest.importorskip(
    "ray", reason="NOT TESTED: compute clusters need Ray (pip install 'lapis[ray]')"
)
pytestmark = [pytest.mark.timeout(600), pytest.mark.xdist_group("ray-clusters")]
FILES = Path(__file__).resolve().parents[1] / "compat" / "files" / "compute"


@pytest.fixture
def cluster(lapis_server: Any, tmp_path: Path) -> Iterator[str]:
    with made_cluster(lapis_server, tmp_path) as name:
        yield name


def _ray_wants_the_token(server: Any, cluster: str) -> None:
    """The cluster's job API (loopback only) answers nobody without the cluster's token,
    and the token file is the server user's alone."""
    import urllib.error
    import urllib.request

    folder = server.home / "clusters" / cluster.lower()
    assert (folder / "auth_token").stat().st_mode & 0o777 == 0o600
    port = json.loads((folder / "state.json").read_text())["dashboard_port"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/jobs/", timeout=10)
    assert refused.value.code in (401, 403)
    token = (folder / "auth_token").read_text().strip()
    asked = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/jobs/", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(asked, timeout=10) as answer:
        assert answer.status == 200


def test_a_job_scales_the_cluster_up_from_zero_and_back(
    lapis_server: Any, cluster: str, tmp_path: Path
) -> None:
    assert [n["name"] for n in nodes(lapis_server, cluster)] == [f"{cluster}-head"]
    assert f"{cluster}-head" in studio_state(lapis_server, cluster)
    _ray_wants_the_token(lapis_server, cluster)
    job_file = tmp_path / "job.yml"
    job_file.write_text(
        "command: >-\n"
        "  python -c \"import mlflow, os; mlflow.log_metric('nodes', 1);"
        " print('ray job', 'RAY_ADDRESS' in os.environ)\" &&"
        " echo done > ${{outputs.result}}/done.txt\n"
        "outputs:\n  result:\n    type: uri_folder\n"
        f"environment: system\ncompute: azureml:{cluster}\n"
    )
    job = wait(lapis_server, submit(lapis_server, job_file)["name"], timeout=360)
    log = log_text(lapis_server, job["name"])
    assert job["status"] == "Completed", (job.get("status_reason"), log)
    assert "ray job True" in log  # the supervisor ran as a Ray job on a worker node
    # while the node started, the job said so (the backend's event in the job's folder)
    events = (lapis_server.home / "jobs" / job["name"] / "events.jsonl").read_text()
    assert f"starting 1 of 1 node of cluster {cluster}" in events
    said = [(e["status"], e["reason"] or "") for e in job["events"]]  # the status history
    assert ("Provisioning", f"starting 1 of 1 node of cluster {cluster}") in said, said
    with lapis_server.client() as http:
        run = http.get(f"/api/v1/runs/{job['run_id']}").json()
    assert run["metrics"]["nodes"]["value"] == 1.0
    out = tmp_path / "dl"
    done = lapis_cli(lapis_server, "job", "download", job["name"], "--output-name", "result",
                     "--download-path", str(out))  # fmt: skip
    assert done.returncode == 0 and (out / "named-outputs" / "result" / "done.txt").exists()
    # the worker started for the job goes once the cluster has been idle for 2 s
    until(
        "scale-down to zero",
        lambda: [n["name"] for n in nodes(lapis_server, cluster)] == [f"{cluster}-head"],
        timeout=90,
    )


def test_cancel_on_a_cluster_leaves_no_process(
    lapis_server: Any, cluster: str, tmp_path: Path
) -> None:
    marker = f"sleep 1{uuid.uuid4().int % 1000:03d}"
    stop = tmp_path / "stop-spinning"  # the job spins a CPU until the test has seen it
    job_file = tmp_path / "job.yml"
    job_file.write_text(
        f"command: echo started && while [ ! -e {stop} ]; do :; done && {marker}\n"
        f"environment: system\ncompute: azureml:{cluster}\n"
    )
    name = submit(lapis_server, job_file)["name"]
    started(lapis_server, cluster, name)

    def busy_node() -> dict[str, Any]:
        found = [n for n in nodes(lapis_server, cluster) if n["detail"] == f"busy: job {name}"]
        assert found, nodes(lapis_server, cluster)
        return found[0]

    # the node's CPU use (its process tree, of the size's cores) shows the spinning job
    until("the busy node's CPU use", lambda: (busy_node()["cpu_percent"] or 0) >= 20, 60,
          lambda: busy_node())  # fmt: skip
    shown = lapis_cli(lapis_server, "compute", "show", "-n", cluster).stdout
    assert re.search(rf"busy: job {name}\s+CPU \d+%", shown), shown
    assert "<meter" in studio_state(lapis_server, cluster)  # the studio's CPU column
    stop.touch()
    second = submit(lapis_server, job_file)["name"]  # the one node is busy
    until(
        "the queue's reason",
        lambda: "all 1 node of cluster" in (get(lapis_server, second)["status_reason"] or ""),
        timeout=30,
    )
    assert lapis_cli(lapis_server, "job", "cancel", second).returncode == 0
    assert lapis_cli(lapis_server, "job", "cancel", name).returncode == 0
    assert wait(lapis_server, name, timeout=120)["status"] == "Canceled"
    assert wait(lapis_server, second, timeout=120)["status"] == "Canceled"
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert left.stdout.strip() == ""
    assert get(lapis_server, name)["compute"] == cluster


def test_cluster_files_are_checked(lapis_server: Any, tmp_path: Path) -> None:
    spec = tmp_path / "c.yml"
    base = (FILES / "small-cluster.yml").read_text().replace("cpu-cluster", "bad-cluster")
    spec.write_text(base.replace("min_instances: 0", "min_instances: 3"))
    done = lapis_cli(lapis_server, "compute", "create", "-f", str(spec))
    assert (
        done.returncode == 1 and "min_instances (3) is more than max_instances (1)" in done.stderr
    )
    spec.write_text(base.replace("max_instances: 1", "max_instances: 64").replace(
        "Standard_DS1_v2", "Standard_DS3_v2"))  # fmt: skip
    done = lapis_cli(lapis_server, "compute", "create", "-f", str(spec))
    assert done.returncode == 1 and "Quota exceeded" in done.stderr
    spec.write_text(base.replace("tier: dedicated", "tier: spot"))
    done = lapis_cli(lapis_server, "compute", "create", "-f", str(spec))
    assert done.returncode == 1 and "must be dedicated or low_priority" in done.stderr


def test_a_live_clusters_scale_changes_and_lost_nodes_are_replaced(
    lapis_server: Any, cluster: str
) -> None:
    """``compute update --min-instances 1`` starts a node at once; a node killed -9 is
    replaced to keep the minimum; a maximum over the quota is refused."""
    updated = json_cli(lapis_server, "compute", "update", "-n", cluster, "--min-instances", "1")
    assert (updated["min_instances"], updated["max_instances"]) == (1, 1)
    workers = f"{cluster}-0"
    until("one worker", lambda: workers in [n["name"] for n in nodes(lapis_server, cluster)])
    assert workers in studio_state(lapis_server, cluster)  # the studio shows it too
    state = json.loads(
        (lapis_server.home / "clusters" / cluster.lower() / "state.json").read_text()
    )
    (first,) = state["workers"]
    subprocess.run(["kill", "-9", str(first["pid"])], check=True)
    until(
        "a replacement node",
        lambda: f"{cluster}-1" in [n["name"] for n in nodes(lapis_server, cluster)],
        timeout=90,
    )
    refused = lapis_cli(lapis_server, "compute", "update", "-n", cluster, "--max-instances", "64")
    assert refused.returncode == 1 and "Quota exceeded" in refused.stderr
    bad = lapis_cli(lapis_server, "compute", "update", "-n", cluster, "--min-instances", "5")
    assert bad.returncode == 1 and "is more than max_instances" in bad.stderr


def test_serverless_jobs_run_on_a_managed_cluster_that_scales_to_zero(
    lapis_server: Any, tmp_path: Path
) -> None:
    job_file = tmp_path / "job.yml"
    job_file.write_text(
        "command: echo serverless says hi\nenvironment: system\ncompute: serverless\n"
        "resources:\n  instance_type: Standard_DS1_v2\n"
    )
    name = "serverless-ds1-v2"
    try:
        job = wait(lapis_server, submit(lapis_server, job_file)["name"], timeout=360)
        assert job["status"] == "Completed", job.get("status_reason")
        assert job["compute"] == name and "serverless says hi" in log_text(
            lapis_server, job["name"]
        )
        shown = json_cli(lapis_server, "compute", "show", "-n", name)
        assert shown["type"] == "amlcompute" and shown["min_instances"] == 0
        json_cli(
            lapis_server, "compute", "update", "-n", name, "--idle-time-before-scale-down", "1"
        )
        until(
            "serverless to scale to zero",
            lambda: [n["name"] for n in nodes(lapis_server, name)] == [f"{name}-head"],
            timeout=90,
        )
        bad = tmp_path / "bad.yml"
        bad.write_text(job_file.read_text().replace("Standard_DS1_v2", "Standard_Nope"))
        refused = lapis_cli(lapis_server, "job", "create", "-f", str(bad))
        assert refused.returncode == 1 and "resources.instance_type" in refused.stderr
    finally:
        lapis_cli(lapis_server, "compute", "delete", "-n", name, "--yes")


def test_an_azure_style_script_makes_a_cluster_and_runs_on_it(lapis_server: Any) -> None:
    """azure-ai-ml's shape: ``AmlCompute`` through ``begin_create_or_update(...).result()``,
    a ``command(...)`` job on it, then ``begin_delete``."""
    from lapis.ml import MLClient, command
    from lapis.ml.entities import AmlCompute

    name = f"sdk-x{uuid.uuid4().hex[:6]}"
    with MLClient(lapis_server.url, lapis_server.token) as ml:
        cluster = ml.compute.begin_create_or_update(
            AmlCompute(name=name, size="Standard_DS1_v2", min_instances=0, max_instances=1,
                       idle_time_before_scale_down=2)
        ).result()  # fmt: skip
        try:
            assert (cluster.type, cluster.state) == ("amlcompute", "Running")
            assert cluster.max_instances == 1
            job = ml.jobs.create_or_update(
                command(command="echo from the sdk", environment="system", compute=name)
            )
            final = ml.jobs.stream(job.name, out=open("/dev/null", "w"))  # noqa: SIM115
            assert final.status == "Completed", final.status_reason
        finally:
            cancel_all(lapis_server, name)  # a failed step must not hide behind the delete
            ml.compute.begin_delete(name).result()


def test_a_job_on_a_killed_node_fails_naming_the_node(
    lapis_server: Any, cluster: str, tmp_path: Path
) -> None:
    name = _sleeper(lapis_server, cluster, tmp_path)
    state = json.loads(
        (lapis_server.home / "clusters" / cluster.lower() / "state.json").read_text()
    )
    (node,) = state["workers"]
    subprocess.run(["kill", "-9", "--", f"-{node['pid']}"], check=True)  # the whole node
    job = wait(lapis_server, name, timeout=120)
    assert job["status"] == "Failed"
    assert f"node {cluster}-{node['index']} was lost" in job["status_reason"], job["status_reason"]
    until(  # the loss stays visible in compute show after the node is gone
        "the lost node listed",
        lambda: any(n["name"] == f"{cluster}-{node['index']}" and n["state"] == "Lost"
                    for n in nodes(lapis_server, cluster)),
        timeout=30,
    )  # fmt: skip


def test_a_batch_deployment_scores_on_a_cluster(
    lapis_server: Any, cluster: str, tmp_path: Path
) -> None:
    """The Azure-shaped batch files of tests/compat with ``compute: azureml:<cluster>``."""
    import shutil

    from jobkit import batch_predictions

    folder = tmp_path / "batch"
    shutil.copytree(FILES.parent / "batch", folder)
    endpoint = f"cb-x{uuid.uuid4().hex[:6]}"
    for yml in folder.glob("*.yml"):
        text = yml.read_text().replace("compat-batch", endpoint)
        yml.write_text(text.replace("compute: local", f"compute: azureml:{cluster}"))
    json_cli(lapis_server, "batch-endpoint", "create", "-f", str(folder / "endpoint.yml"))
    try:
        made = json_cli(lapis_server, "batch-deployment", "create", "-f",
                     str(folder / "deployment.yml"), "--set-default")  # fmt: skip
        assert made["compute"] == cluster
        job = json_cli(lapis_server, "batch-endpoint", "invoke", "-n", endpoint,
                    "--input", str(folder / "data"), "--stream")  # fmt: skip
        assert job["status"] == "Completed", job["status_reason"]
        assert job["compute"] == cluster
        rows = batch_predictions(lapis_server, job["name"], tmp_path / "dl")
        assert sorted(rows) == ["n1.txt,3", "n2.txt,6", "n3.txt,9"]
    finally:
        lapis_cli(lapis_server, "batch-endpoint", "delete", "-n", endpoint, "--yes")


def test_a_server_restart_mid_job_readopts_the_cluster_and_the_job(
    fresh_server: Any, tmp_path: Path
) -> None:
    """kill -9 the server while a job runs on a cluster node; the cluster keeps running,
    and the restarted server reports the job's end, its log and its outputs."""
    with made_cluster(fresh_server, tmp_path) as name:
        job_file = tmp_path / "job.yml"
        job_file.write_text(
            "command: echo started && sleep 6 && echo done > ${{outputs.result}}/done.txt"
            " && echo finished\n"
            "outputs:\n  result:\n    type: uri_folder\n"
            f"environment: system\ncompute: azureml:{name}\n"
        )
        job = submit(fresh_server, job_file)["name"]
        started(fresh_server, name, job)
        fresh_server.port = int(fresh_server.url.rsplit(":", 1)[1])  # back on the same port
        fresh_server.kill9()
        time.sleep(2)
        fresh_server.start()
        done = wait(fresh_server, job, timeout=120)
        assert done["status"] == "Completed", done["status_reason"]
        assert "finished" in log_text(fresh_server, job)
        with fresh_server.client() as http:
            got = http.get(f"/api/v1/jobs/{job}/outputs/result/files").json()["files"]
        assert [f["path"] for f in got] == ["done.txt"]
        assert json_cli(fresh_server, "compute", "show", "-n", name)["state"] == "Running"


def test_a_dead_head_is_restarted_and_its_job_reported(
    lapis_server: Any, cluster: str, tmp_path: Path
) -> None:
    name = _sleeper(lapis_server, cluster, tmp_path)
    state_file = lapis_server.home / "clusters" / cluster.lower() / "state.json"
    head = json.loads(state_file.read_text())["head"]
    os.killpg(int(head["pid"]), signal.SIGKILL)  # ray start, GCS, dashboard, raylet: all
    job = wait(lapis_server, name, timeout=120)
    assert job["status"] == "Failed"
    assert f"the head node of cluster {cluster} was lost" in job["status_reason"]
    until(
        "a new head",
        lambda: (
            json.loads(state_file.read_text()).get("head_restarts") == 1
            and json_cli(lapis_server, "compute", "show", "-n", cluster)["state"] == "Running"
        ),
        timeout=90,
    )
    quick = tmp_path / "quick.yml"
    quick.write_text(f"command: echo again\nenvironment: system\ncompute: azureml:{cluster}\n")
    assert wait(lapis_server, submit(lapis_server, quick)["name"], timeout=180)["status"] == (
        "Completed"
    )


def _sleeper(server: Any, cluster: str, tmp_path: Path) -> str:
    """A job that says it started and then sleeps on the cluster; its name once it runs."""
    job_file = tmp_path / "job.yml"
    job_file.write_text(
        f"command: echo started && sleep 300\nenvironment: system\ncompute: azureml:{cluster}\n"
    )
    name: str = submit(server, job_file)["name"]
    started(server, cluster, name)
    return name
