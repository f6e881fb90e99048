"""The ssh node provider: a cluster whose worker nodes are other hosts, reached over SSH —
here two network namespaces with their own addresses, each with an sshd. A PyTorch job
all-reduces across them over gloo, which only works if each rank was given the interface
holding its own node's address (on its host, not this one's)."""

from __future__ import annotations

import hashlib
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from clusterkit import (
    cancel_all,
    json_cli,
    one_store,  # noqa: F401  (the module's lapis_server: SQLite)
    until,
)
from jobkit import lapis_cli, log_text, submit, wait
from netkit import two_hosts

pytest.importorskip(
    "ray", reason="NOT TESTED: compute clusters need Ray (pip install 'lapis[ray]')"
)
pytestmark = [pytest.mark.timeout(400), pytest.mark.xdist_group("ray-clusters")]

ALLREDUCE = """\
command: >-
  python -c "import os, torch, torch.distributed as d; d.init_process_group('gloo');
  t = torch.tensor([d.get_rank() + 1.0]); d.all_reduce(t);
  print('rank', d.get_rank(), 'via', os.environ['GLOO_SOCKET_IFNAME'], 'sum', t.item());
  d.destroy_process_group()"
environment: system
compute: azureml:{cluster}
resources:
  instance_count: 2
distribution:
  type: pytorch
  process_count_per_instance: 1
"""


def test_an_ssh_cluster_runs_a_gang_across_two_hosts(lapis_server: Any, tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="NOT TESTED: pip install torch==2.13.0 (CPU build)")
    with two_hosts(tmp_path) as net:
        name = f"ssh-x{uuid.uuid4().hex[:6]}"
        spec = tmp_path / "cluster.yml"
        spec.write_text(
            f"name: {name}\ntype: amlcompute\nsize: Standard_DS1_v2\nmin_instances: 0\n"
            "max_instances: 2\nidle_time_before_scale_down: 2\nprovider:\n  type: ssh\n"
            f"  head_address: {net['head']}\n  hosts: [{', '.join(net['hosts'])}]\n"
            f"  user: root\n  identity_file: {net['identity']}\n"
        )
        made = json_cli(lapis_server, "compute", "create", "-f", str(spec))
        assert made["type"] == "amlcompute"
        assert made["provider"] == f"ssh: {', '.join(net['hosts'])}"
        try:
            until("the head", lambda: json_cli(lapis_server, "compute", "show", "-n", name)
                  ["state"] == "Running")  # fmt: skip
            job_file = tmp_path / "job.yml"
            job_file.write_text(ALLREDUCE.format(cluster=name))
            job = submit(lapis_server, job_file)["name"]
            done = wait(lapis_server, job, timeout=240)
            log = log_text(lapis_server, job)
            assert done["status"] == "Completed", (done["status_reason"], log)
            placed = dict(re.findall(rf"is {name}-\d+ at ([\d.]+) \((\w+)\)", log))
            assert placed == net["interfaces"], (placed, log)  # each host, its own interface
            for rank in (0, 1):
                via = re.search(rf"\[rank {rank}\] rank {rank} via (\w+) sum 3.0", log)
                assert via and via.group(1) in net["interfaces"].values(), log
        finally:
            cancel_all(lapis_server, name)
            gone = lapis_cli(lapis_server, "compute", "delete", "-n", name, "--yes")
            assert gone.returncode == 0, gone.stderr
        folder = lapis_server.home / "clusters" / name.lower()
        key = hashlib.sha256(str(folder).encode()).hexdigest()[:12]
        until(  # the nodes on both hosts (this machine's namespaces) are gone too
            "no node process left",
            lambda: subprocess.run(["pgrep", "-f", f"lapis-ray-{key}"],
                                   capture_output=True).returncode != 0,
            timeout=30,
        )  # fmt: skip
