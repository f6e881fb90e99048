"""Compute-cluster benchmark: a real server, a real Ray cluster of local-process nodes.

    python bench/cluster.py [--repeats N]

Measured on one cluster (``Standard_DS1_v2``, 0..1 nodes) of a fresh workspace:

1. **create → Running**: the Ray head is up and answering.
2. **from zero**: a trivial job (``python -c "print(1)"``) submitted while the cluster
   has no worker: submit→Running and submit→Completed (this includes starting a node).
3. **warm**: the same job with the node up, ``repeats`` times: submit→Running and
   submit→Completed, against **Ray's own** ``ray job submit`` of the same entrypoint on
   the same cluster (the anchor; its time to SUCCEEDED), side by side, alternating.
4. **scale-down**: with ``idle_time_before_scale_down: 2``, the time from the last job's
   end to the node being gone.
5. **two-node all-reduce**: a PyTorch job (``instance_count: 2``, gloo) from zero nodes:
   submit→Running (both nodes started, the gang placed) and submit→Completed.
6. **lost node**: kill -9 the node under a running job; seconds until the job is Failed
   with the node's name.

Ratios are Lapis over Ray (lower is better). The cluster and the server are removed at
the end, even on error. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

import _harness as h

FINAL = {"Completed", "Failed", "Canceled"}
STARTED = {"Running", "Finalizing", *FINAL}
JOB = 'command: python -c "print(1)"\nenvironment: system\ncompute: azureml:bench-cluster\n'
ALLREDUCE = """\
command: >-
  python -c "import torch, torch.distributed as d; d.init_process_group('gloo');
  t = torch.tensor([d.get_rank() + 1.0]); d.all_reduce(t); assert t.item() == 3.0, t;
  d.destroy_process_group()"
environment: system
compute: azureml:bench-cluster
resources:
  instance_count: 2
distribution:
  type: pytorch
  process_count_per_instance: 1
"""
SLEEPER = "command: sleep 300\nenvironment: system\ncompute: azureml:bench-cluster\n"


def _wait(http: httpx.Client, name: str, started: float) -> tuple[float, float]:
    """Seconds from ``started`` to Running and to Completed."""
    running = None
    while True:
        job = http.get(f"/api/v1/jobs/{name}").json()
        if running is None and job["status"] in STARTED:
            running = time.monotonic() - started
        if job["status"] in FINAL:
            if job["status"] != "Completed":
                raise RuntimeError(f"job {name} ended {job['status']}: {job['status_reason']}")
            return running or 0.0, time.monotonic() - started
        time.sleep(0.02)


def _submit(http: httpx.Client, yaml: str = JOB) -> tuple[float, float]:
    started = time.monotonic()
    job = http.post("/api/v1/jobs", json={"yaml": yaml, "source": "bench"})
    job.raise_for_status()
    return _wait(http, job.json()["name"], started)


def _nodes(http: httpx.Client) -> list[str]:
    return [n["name"] for n in http.get("/api/v1/computes/bench-cluster").json()["nodes"]]


def _ray_submit(dashboard: str, token: str) -> float:
    """Ray's own submission of the same entrypoint to the same node, until SUCCEEDED."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(dashboard, headers={"Authorization": f"Bearer {token}"})
    started = time.monotonic()
    sid = client.submit_job(
        entrypoint=f'{sys.executable} -c "print(1)"',
        entrypoint_num_cpus=1,
        entrypoint_resources={"lapis_node": 1},
    )
    while True:
        status = client.get_job_status(sid)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            if status != JobStatus.SUCCEEDED:
                raise RuntimeError(f"ray job {sid}: {status}")
            return time.monotonic() - started
        time.sleep(0.02)


def _two_nodes(http: httpx.Client) -> list[tuple[str, str]]:
    try:
        import torch  # noqa: F401
    except ImportError:
        print("SKIPPED the two-node all-reduce: pip install torch==2.13.0", file=sys.stderr)
        return [("two-node all-reduce", "skipped (no torch)")]
    while len(_nodes(http)) > 1:  # from zero
        time.sleep(0.1)
    run, done = _submit(http, ALLREDUCE)
    return [
        ("2 nodes x 1 process all-reduce from zero: submit → Running", f"{run:.2f} s"),
        ("2 nodes x 1 process all-reduce from zero: submit → Completed", f"{done:.2f} s"),
    ]


def _lost_node(http: httpx.Client, folder: Path) -> list[tuple[str, str]]:
    import os
    import signal

    name = http.post("/api/v1/jobs", json={"yaml": SLEEPER, "source": "bench"}).json()["name"]
    while http.get(f"/api/v1/jobs/{name}").json()["status"] != "Running":
        time.sleep(0.05)
    node = (folder.parent.parent / "jobs" / name / "node").read_text()
    state = json.loads((folder / "state.json").read_text())
    (worker,) = [w for w in state["workers"] if str(w["index"]) == node]
    killed = time.monotonic()
    os.killpg(int(worker["pid"]), signal.SIGKILL)
    while (job := http.get(f"/api/v1/jobs/{name}").json())["status"] != "Failed":
        time.sleep(0.05)
    if "was lost" not in (job["status_reason"] or ""):
        raise RuntimeError(f"job {name} failed for another reason: {job['status_reason']}")
    return [("kill -9 a node → its job Failed (naming it)", f"{time.monotonic() - killed:.2f} s")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    server = h.start_lapis(label="Lapis")
    rows: list[tuple[str, str]] = []
    try:
        http = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=120
        )
        doc = {
            "name": "bench-cluster",
            "type": "amlcompute",
            "size": "Standard_DS1_v2",
            "min_instances": 0,
            "max_instances": 2,
            "idle_time_before_scale_down": 2,
        }
        t0 = time.monotonic()
        http.post("/api/v1/computes", json=doc).raise_for_status()
        while http.get("/api/v1/computes/bench-cluster").json()["state"] != "Running":
            time.sleep(0.05)
        rows.append(("create → Running (Ray head up)", f"{time.monotonic() - t0:.2f} s"))

        cold_run, cold_done = _submit(http)
        rows.append(("from zero nodes: submit → Running", f"{cold_run:.2f} s"))
        rows.append(("from zero nodes: submit → Completed", f"{cold_done:.2f} s"))

        folder = server.home / "clusters" / "bench-cluster"
        state = json.loads((folder / "state.json").read_text())
        dashboard = f"http://127.0.0.1:{state['dashboard_port']}"
        token = (folder / "auth_token").read_text().strip()
        lapis_run, lapis_done, ray_done = [], [], []
        for _ in range(args.repeats):  # alternating, so both see the same machine
            r, d = _submit(http)
            lapis_run.append(r)
            lapis_done.append(d)
            ray_done.append(_ray_submit(dashboard, token))
        med = statistics.median
        rows.append(("warm node: submit → Running (median)", f"{med(lapis_run):.2f} s"))
        rows.append(("warm node: trivial job, Lapis (median)", f"{med(lapis_done):.2f} s"))
        rows.append(
            ("warm node: same entrypoint, `ray job submit` (median)", f"{med(ray_done):.2f} s")
        )
        rows.append(
            ("ratio Lapis / Ray (target <= 1.2x)", f"{med(lapis_done) / med(ray_done):.2f}x")
        )

        t1 = time.monotonic()
        while len(_nodes(http)) > 1:
            time.sleep(0.1)
        rows.append(("idle 2 s → node released", f"{time.monotonic() - t1:.2f} s after the job"))
        rows += _two_nodes(http)
        rows += _lost_node(http, folder)
        http.delete("/api/v1/computes/bench-cluster")
    finally:
        server.cleanup()
    width = max(len(k) for k, _ in rows)
    print(f"\nCompute cluster (local Ray nodes), {args.repeats} warm repeats")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
