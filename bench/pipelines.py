"""Pipelines benchmark: a fan-out/fan-in pipeline of trivial steps against the same
commands submitted as plain jobs, side by side, on one real server.

    python bench/pipelines.py [--width 18]

The pipeline has ``--width`` + 2 steps (20 by default): ``fan_out`` writes an output,
``--width`` steps each read it and write their own, ``fan_in`` reads them all. Each
step's command is ``echo``. Measured:

1. **pipeline**: submit → the parent Completed, and the same figure per step;
2. **plain jobs** (the anchor): the same 20 commands as 20 jobs with the same inputs and
   outputs (each reading the jobs before it by ``azureml://jobs/<job>/outputs/o``),
   submitted in the same waves (fan_out; then the middle ones at once; then fan_in),
   each wave waiting for the last — what a user scripting the DAG by hand would do;
3. **per-step overhead**: (pipeline - plain jobs) / steps: what the pipeline's
   orchestration adds to each step;
4. **all reused**: the same file submitted again — every step's work is the same, so
   every step is recorded reused and nothing runs (target: under a second for 20).

Both run on the workspace's ``local`` compute (two jobs per core). Everything is
removed at the end. See bench/README.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).parent))

import _harness as h

FINAL = {"Completed", "Failed", "Canceled"}


def _wait(http: httpx.Client, names: list[str]) -> None:
    left = set(names)
    while left:
        for name in list(left):
            job = http.get(f"/api/v1/jobs/{name}").json()
            if job["status"] in FINAL:
                if job["status"] != "Completed":
                    raise RuntimeError(f"{name} {job['status']}: {job['status_reason']}")
                left.discard(name)
        time.sleep(0.02)


def _pipeline(width: int) -> str:
    jobs: dict[str, Any] = {
        "fan_out": {"command": "echo out ${{outputs.o}}", "outputs": {"o": {"type": "uri_folder"}}}
    }
    for i in range(width):
        jobs[f"mid_{i:02d}"] = {
            "command": "echo mid ${{inputs.x}} ${{outputs.o}}",
            "inputs": {"x": "${{parent.jobs.fan_out.outputs.o}}"},
            "outputs": {"o": {"type": "uri_folder"}},
        }
    jobs["fan_in"] = {
        "command": "echo in " + " ".join(f"${{{{inputs.x{i:02d}}}}}" for i in range(width)),
        "inputs": {
            f"x{i:02d}": f"${{{{parent.jobs.mid_{i:02d}.outputs.o}}}}" for i in range(width)
        },
    }
    doc = {"type": "pipeline", "settings": {"default_compute": "local"}, "jobs": jobs}
    return yaml.safe_dump(doc, sort_keys=False)


def _plain(http: httpx.Client, command: str, inputs: dict[str, str], output: bool) -> str:
    """One step as a plain job with the same inputs (another job's output, by reference)
    and output as in the pipeline."""
    doc: dict[str, Any] = {"command": command, "environment": "system", "compute": "local"}
    if inputs:
        doc["inputs"] = {k: {"type": "uri_folder", "path": v} for k, v in inputs.items()}
    if output:
        doc["outputs"] = {"o": {"type": "uri_folder"}}
    made = http.post("/api/v1/jobs", json={"yaml": yaml.safe_dump(doc), "source": "bench"})
    made.raise_for_status()
    return str(made.json()["name"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=18)
    args = parser.parse_args()
    steps = args.width + 2
    server = h.start_lapis(label="Lapis")
    work = Path(tempfile.mkdtemp(prefix="bench-pipelines-"))
    try:
        http = httpx.Client(base_url=server.url, timeout=600,
                            headers={"Authorization": f"Bearer {server.token}"})  # fmt: skip
        _wait(http, [_plain(http, "echo warm", {}, False)])  # the first job pays for imports
        t0 = time.monotonic()
        made = http.post("/api/v1/jobs", json={"yaml": _pipeline(args.width), "source": "bench"})
        made.raise_for_status()
        _wait(http, [made.json()["name"]])
        pipeline_s = time.monotonic() - t0

        t0 = time.monotonic()
        again = http.post("/api/v1/jobs", json={"yaml": _pipeline(args.width), "source": "bench"})
        again.raise_for_status()
        _wait(http, [again.json()["name"]])
        reused_s = time.monotonic() - t0
        shown = http.get(f"/api/v1/jobs/{again.json()['name']}/steps").json()["steps"]
        reused = sum(1 for s in shown if s.get("reused_from"))

        t0 = time.monotonic()
        first = _plain(http, "echo out ${{outputs.o}}", {}, True)
        _wait(http, [first])
        made_by = f"azureml://jobs/{first}/outputs/o"
        middle = [_plain(http, "echo mid ${{inputs.x}} ${{outputs.o}}", {"x": made_by}, True)
                  for _ in range(args.width)]  # fmt: skip
        _wait(http, middle)
        last = {f"x{i:02d}": f"azureml://jobs/{m}/outputs/o" for i, m in enumerate(middle)}
        command = "echo in " + " ".join(f"${{{{inputs.{k}}}}}" for k in last)
        _wait(http, [_plain(http, command, last, False)])
        plain_s = time.monotonic() - t0
    finally:
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nPipelines: {steps} steps (fan-out of {args.width}, fan-in), local compute, "
          "same machine, same run")  # fmt: skip
    print(f"  {'':<34} {'seconds':>9} {'per step':>9}")
    print(f"  {'pipeline (submit → Completed)':<34} {pipeline_s:9.2f} {pipeline_s / steps:9.2f}")
    print(f"  {'the same as plain jobs, in waves':<34} {plain_s:9.2f} {plain_s / steps:9.2f}")
    print(f"  {'submitted again, all reused':<34} {reused_s:9.2f} {reused_s / steps:9.2f}")
    print(f"  ratio {pipeline_s / plain_s:.2f}x; per-step overhead "
          f"{(pipeline_s - plain_s) / steps * 1000:+.0f} ms; "
          f"reused {reused} of {steps} steps in {reused_s:.2f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
