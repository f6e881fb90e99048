"""An existing Ray cluster attached as a compute cluster (``provider: {type: ray}``): a
user's own two-node Ray cluster (started here with ``ray start``, with Ray's token auth)
runs a command job and a two-node gang; Lapis shows its nodes, never its token, and
leaves the cluster running when the compute is deleted."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clusterkit import (
    json_cli,
    one_store,  # noqa: F401  (the module's lapis_server: SQLite)
    until,
)
from jobkit import lapis_cli, log_text, submit, wait

pytest.importorskip(
    "ray", reason="NOT TESTED: compute clusters need Ray (pip install 'lapis[ray]')"
)
pytestmark = [pytest.mark.timeout(300), pytest.mark.xdist_group("ray-clusters")]


def _ray(folder: Path, name: str, argv: list[str], token: Path) -> subprocess.Popen[bytes]:
    import shutil
    import sys

    ray = str(Path(sys.executable).parent / "ray") if shutil.which("ray") is None else "ray"
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
           "RAY_USAGE_STATS_ENABLED": "0"}  # fmt: skip
    env.pop("COVERAGE_PROCESS_CONFIG", None)  # the user's Ray, not Lapis' code: unmeasured
    with open(folder / f"{name}.log", "wb") as out:
        return subprocess.Popen(
            [ray, "start", "--block", "--disable-usage-stats", *argv],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip


@pytest.fixture(scope="module")
def users_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A Ray cluster as a user runs it: a head and one worker, one CPU each, token auth."""
    from lapis.compute.ray.nodes import free_port, node_ports

    folder = tmp_path_factory.mktemp("users-ray")
    token = folder / "ray_token"
    token.write_text(uuid.uuid4().hex + "\n")
    temp = f"/tmp/lapis-t-{uuid.uuid4().hex[:8]}"  # Ray's socket paths must stay short
    gcs, dashboard = free_port(), free_port()
    ports = [f"--{k}={v}" for k, v in node_ports().items()]
    procs = [_ray(folder, "head", [
        "--head", f"--port={gcs}", "--num-cpus=1", "--include-dashboard=true",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
        f"--ray-client-server-port={free_port()}", f"--temp-dir={temp}", *ports,
    ], token)]  # fmt: skip
    url = f"http://127.0.0.1:{dashboard}"
    headers = {"Authorization": f"Bearer {token.read_text().strip()}"}

    def nodes_up() -> int:
        try:
            asked = urllib.request.Request(f"{url}/api/v0/nodes", headers=headers)
            with urllib.request.urlopen(asked, timeout=5) as answer:
                listed = json.load(answer)["data"]["result"]["result"]
        except (OSError, ValueError, KeyError):
            return 0
        return sum(1 for n in listed if n["state"] == "ALIVE")

    def up(count: int) -> bool:
        for proc, log in zip(procs, ("head.log", "worker.log"), strict=False):
            assert proc.poll() is None, (folder / log).read_text()[-800:]
        return nodes_up() == count

    try:
        until("the user's Ray head", lambda: up(1), 120,
              lambda: (folder / "head.log").read_text()[-800:])  # fmt: skip
        for attempt in (1, 2, 3):  # as its user would: Ray gives a node's agent 15 s, which
            # a loaded 2-core runner can exceed; then the node exits and is started again
            worker_ports = [f"--{k}={v}" for k, v in node_ports().items()]
            procs.append(_ray(folder, "worker", [
                f"--address=127.0.0.1:{gcs}", "--num-cpus=1", f"--temp-dir={temp}",
                *worker_ports,
            ], token))  # fmt: skip
            try:
                until("the user's Ray worker", lambda: up(2), 120,
                      lambda: (folder / "worker.log").read_text()[-800:])  # fmt: skip
                break
            except AssertionError:
                if attempt == 3 or procs[-1].poll() is None:
                    raise
                with contextlib.suppress(ProcessLookupError):  # its raylet, if it outlived it
                    os.killpg(procs[-1].pid, signal.SIGKILL)
                procs.pop().wait()
        yield {"url": url, "token": token, "headers": headers, "procs": procs}
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:  # Ray drains for up to 30 s; 5 s is enough for a test's cluster
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        import shutil

        shutil.rmtree(temp, ignore_errors=True)


def _attach(server: Any, tmp_path: Path, cluster: dict[str, Any], token_line: str) -> str:
    name = f"cl-x{uuid.uuid4().hex[:6]}"
    spec = tmp_path / f"{name}.yml"
    spec.write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/amlCompute.schema.json\n"
        f"name: {name}\ntype: amlcompute\nsize: Standard_DS3_v2\nmax_instances: 2\n"
        f"provider:\n  type: ray\n  address: {cluster['url']}\n{token_line}"
    )
    made = json_cli(server, "compute", "create", "-f", str(spec))
    assert made["provider"] == f"ray: {cluster['url']} (attached)"
    return name


def test_an_attached_ray_cluster_runs_jobs_and_gangs_and_outlives_its_compute(
    lapis_server: Any, users_cluster: dict[str, Any], tmp_path: Path
) -> None:
    secret = users_cluster["token"].read_text().strip()
    (tmp_path / "ray_token").write_text(secret)
    name = _attach(lapis_server, tmp_path, users_cluster, "  token_file: ray_token\n")
    until("the attached cluster", lambda: json_cli(lapis_server, "compute", "show", "-n", name)
          ["state"] == "Running")  # fmt: skip
    shown = lapis_cli(lapis_server, "compute", "show", "-n", name, "-o", "json")
    assert secret not in shown.stdout  # kept in the cluster's folder (0600), never shown
    kept = lapis_server.home / "clusters" / name / "auth_token"
    assert kept.stat().st_mode & 0o777 == 0o600
    nodes = json.loads(shown.stdout)["nodes"]
    assert len(nodes) == 2 and all(n["state"] == "Running" for n in nodes), nodes
    assert "head" in nodes[0]["detail"] and "1 CPUs" in nodes[1]["detail"], nodes
    # no quota is taken: the machines are the user's
    assert "attached" in lapis_cli(lapis_server, "compute", "show", "-n", name).stdout

    job_file = tmp_path / "job.yml"
    job_file.write_text(
        "command: >-\n"
        "  python -c \"import mlflow, os; mlflow.log_metric('attached', 1);"
        " print('ray job', 'RAY_ADDRESS' in os.environ)\" &&"
        " echo done > ${{outputs.result}}/done.txt\n"
        "outputs:\n  result:\n    type: uri_folder\n"
        f"environment: system\ncompute: azureml:{name}\n"
    )
    job = wait(lapis_server, submit(lapis_server, job_file)["name"], timeout=180)
    log = log_text(lapis_server, job["name"])
    assert job["status"] == "Completed", (job.get("status_reason"), log)
    assert "ray job True" in log
    with lapis_server.client() as http:
        run = http.get(f"/api/v1/runs/{job['run_id']}").json()
    assert run["metrics"]["attached"]["value"] == 1.0
    out = tmp_path / "dl"
    done = lapis_cli(lapis_server, "job", "download", job["name"], "--output-name", "result",
                     "--download-path", str(out))  # fmt: skip
    assert done.returncode == 0 and (out / "named-outputs" / "result" / "done.txt").exists()

    gang_file = tmp_path / "gang.yml"  # one process on each of the user's two nodes
    gang_file.write_text(
        "command: python -c \"import os; print('rank', os.environ['RANK'], 'of',"
        " os.environ['WORLD_SIZE'], 'node', os.environ['NODE_RANK'])\"\n"
        f"environment: system\ncompute: azureml:{name}\n"
        "resources:\n  instance_count: 2\n"
        "distribution:\n  type: pytorch\n  process_count_per_instance: 1\n"
    )
    gang = wait(lapis_server, submit(lapis_server, gang_file)["name"], timeout=180)
    log = log_text(lapis_server, gang["name"])
    assert gang["status"] == "Completed", (gang.get("status_reason"), log)
    assert "rank 0 of 2 node 0" in log and "rank 1 of 2 node 1" in log, log

    done = lapis_cli(lapis_server, "compute", "delete", "-n", name, "--yes")
    assert done.returncode == 0, done.stderr
    # the user's cluster is not Lapis' to stop
    assert all(p.poll() is None for p in users_cluster["procs"])
    asked = urllib.request.Request(
        f"{users_cluster['url']}/api/version", headers=users_cluster["headers"]
    )
    with urllib.request.urlopen(asked, timeout=10) as answer:
        assert answer.status == 200


def test_attaching_with_a_wrong_token_through_the_sdk_fails_and_says_so(
    lapis_server: Any, users_cluster: dict[str, Any]
) -> None:
    """The SDK sends ``provider.token`` itself; a wrong one fails the create with Ray's
    refusal and a hint, and the token is not shown back."""
    from lapis.errors import LapisError
    from lapis.ml import MLClient
    from lapis.ml.entities import AmlCompute

    name = f"cl-x{uuid.uuid4().hex[:6]}"
    wrong = f"not-the-token-{uuid.uuid4().hex[:6]}"
    provider = {"type": "ray", "address": users_cluster["url"], "token": wrong}
    with MLClient(lapis_server.url, lapis_server.token) as ml:
        try:
            with pytest.raises(LapisError) as failed:
                ml.compute.begin_create_or_update(
                    AmlCompute(name=name, size="Standard_DS1_v2", max_instances=2,
                               provider=provider)
                ).result()  # fmt: skip
            assert "answered 40" in str(failed.value) and "token" in str(failed.value)
            shown = lapis_cli(lapis_server, "compute", "show", "-n", name, "-o", "json")
            assert json.loads(shown.stdout)["state"] == "Failed"
            assert wrong not in shown.stdout
        finally:
            ml.compute.begin_delete(name).result()


def test_a_token_file_that_cannot_be_read_is_one_line_naming_it(
    lapis_server: Any, tmp_path: Path
) -> None:
    spec = tmp_path / "c.yml"
    spec.write_text(
        "name: cl-xmissing\ntype: amlcompute\n"
        "provider:\n  type: ray\n  address: 127.0.0.1:1\n  token_file: nowhere/token\n"
    )
    done = lapis_cli(lapis_server, "compute", "create", "-f", str(spec))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "c.yml:6" in done.stderr and "cannot read" in done.stderr, done.stderr
