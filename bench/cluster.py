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


def _submit(http: httpx.Client) -> tuple[float, float]:
    started = time.monotonic()
    job = http.post("/api/v1/jobs", json={"yaml": JOB, "source": "bench"})
    job.raise_for_status()
    return _wait(http, job.json()["name"], started)


def _nodes(http: httpx.Client) -> list[str]:
    return [n["name"] for n in http.get("/api/v1/computes/bench-cluster").json()["nodes"]]


def _ray_submit(dashboard: str) -> float:
    """Ray's own submission of the same entrypoint to the same node, until SUCCEEDED."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(dashboard)
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
            "max_instances": 1,
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

        state = json.loads((server.home / "clusters" / "bench-cluster" / "state.json").read_text())
        dashboard = f"http://127.0.0.1:{state['dashboard_port']}"
        lapis_run, lapis_done, ray_done = [], [], []
        for _ in range(args.repeats):  # alternating, so both see the same machine
            r, d = _submit(http)
            lapis_run.append(r)
            lapis_done.append(d)
            ray_done.append(_ray_submit(dashboard))
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
