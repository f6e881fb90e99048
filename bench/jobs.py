"""Jobs and environments benchmark: real server, real supervisors, real uv and pip.

    python bench/jobs.py [--quick] [--skip-pip] [--skip-env] [--json PATH]

Two phases, one after the other, so nothing else competes for the cores:

1. **Environments** (no server): the spec scikit-learn + pandas (a conda YAML
   with a pip section) built cold by Lapis' ``EnvironmentBuilder`` with an
   empty uv cache, then by ``python -m venv`` + ``pip install`` with an empty
   pip cache (the anchor); then a new environment from the now warm uv cache;
   then a cache hit on the same root. Each build runs in a child process in
   its own session, so Ctrl+C or an error ends it with its whole tree.
2. **Jobs**: ``lapis server --home TMP --port 0`` (URL from ``server.json``,
   token from ``credentials.json``), started with ``UV_CACHE_DIR`` pointing at
   the cache phase 1 warmed. Over HTTP: submit→Running latency on a warm
   ``system`` environment, a whole ``python -c "print(1)"`` job against the
   same command under bare ``subprocess.run``, throughput of many tiny jobs on a
   1-core compute instance, and an inline-environment job submitted twice (the
   second one is an environment cache hit).

Everything lives in one temporary folder that is removed at the end; the
server is killed with its process group even on error. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))

import _harness as h
import _report as rep

FULL = {"latency_jobs": 20, "overhead_repeats": 5, "throughput_jobs": 100, "hit_repeats": 5}
QUICK = {"latency_jobs": 10, "overhead_repeats": 3, "throughput_jobs": 20, "hit_repeats": 3}
RESULTS_DIR = Path(__file__).parent / "results"
POLL_S = 0.010
FINAL = {"Completed", "Failed", "Canceled"}
STARTED = {"Running", "Finalizing", *FINAL}
PACKAGES = ["scikit-learn", "pandas"]
PY_MM = f"{sys.version_info.major}.{sys.version_info.minor}"
CONDA = f"""\
name: sklearn-pandas
channels:
  - conda-forge
dependencies:
  - python={PY_MM}
  - pip
  - pip:
    - scikit-learn
    - pandas
"""
# Runs the builder in a child process (own session: killable with its uv children).
BUILDER_CHILD = """\
import json, sys, time
t0 = time.perf_counter()
from lapis.environments.builder import EnvironmentBuilder
from lapis.specs.environment import from_conda
root, repeats = sys.argv[1], int(sys.argv[2])
text = sys.stdin.read()
builder = EnvironmentBuilder(__import__("pathlib").Path(root))
times, hits = [], []
for _ in range(repeats):
    t = time.perf_counter()
    built = builder.ensure(from_conda(text))
    times.append(time.perf_counter() - t)
    hits.append(built.cache_hit)
print(json.dumps({"seconds": times, "cache_hit": hits, "digest": built.digest,
                  "python": str(built.python)}))
"""


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    """Percentile with linear interpolation (q in 0..100)."""
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


# --- child processes -----------------------------------------------------------------
def run_timed(
    argv: list[str], env: dict[str, str], timeout_s: float, stdin: str | None = None
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run argv in its own session; the whole group dies on timeout, error or Ctrl+C."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(stdin, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{Path(argv[0]).name} timed out after {timeout_s:.0f} s") from None
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    elapsed = time.perf_counter() - t0
    done = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if proc.returncode != 0:
        tail = "\n".join((err or out or "").splitlines()[-15:])
        raise RuntimeError(f"{' '.join(argv[:4])} … exited {proc.returncode}:\n{tail}")
    return elapsed, done


def pip_env(cache: Path) -> dict[str, str]:
    """pip against PyPI only, with an empty cache: the same footing as uv here.

    This machine's pip.conf adds local wheel folders that uv does not read; the
    anchor ignores them so both tools download the same wheels from the index.
    """
    env = h.clean_env({"PIP_CACHE_DIR": str(cache), "PIP_CONFIG_FILE": os.devnull})
    env.pop("PIP_FIND_LINKS", None)
    env.pop("PIP_INDEX_URL", None)
    env.pop("PIP_EXTRA_INDEX_URL", None)
    return env


def builder(root: Path, cache: Path, repeats: int, timeout_s: float) -> dict[str, Any]:
    env = h.clean_env({"UV_CACHE_DIR": str(cache)})
    argv = [sys.executable, "-c", BUILDER_CHILD, str(root), str(repeats)]
    wall, done = run_timed(argv, env, timeout_s, stdin=CONDA)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["child_wall_s"] = wall
    return result


# --- phase 1: environments -------------------------------------------------------------
def bench_pip(work: Path, out: dict[str, Any]) -> None:
    say(f"== pip anchor: python -m venv + pip install {' '.join(PACKAGES)} (cold cache)")
    try:
        venv = work / "pip-venv"
        env = pip_env(work / "pip-cache")
        t_venv, _ = run_timed([sys.executable, "-m", "venv", str(venv)], env, 300)
        t_pip, _ = run_timed(
            [str(venv / "bin" / "pip"), "install", "--quiet", *PACKAGES], env, 1800
        )
        out["pip_cold_s"] = t_venv + t_pip
        out["pip_venv_s"] = t_venv
        say(f"  {out['pip_cold_s']:.1f} s (venv {t_venv:.1f} s)")
    except Exception as exc:
        out["errors"]["pip_cold_s"] = str(exc)
        say(f"  failed: {exc}")
    finally:
        shutil.rmtree(work / "pip-venv", ignore_errors=True)
        shutil.rmtree(work / "pip-cache", ignore_errors=True)


def bench_environments(
    work: Path, cfg: dict[str, Any], skip_pip: bool, out: dict[str, Any]
) -> None:
    """uv cold first, then the pip anchor, then uv warm and cache hits.

    uv goes before pip so that if the package proxy caches what it serves, it is
    the anchor, not Lapis, that gets the proxy's warm copies: the ratio errs
    against Lapis.
    """
    cache = work / "uv-cache"
    errors = out["errors"]
    say("== Lapis builder, cold uv cache")
    try:
        cold = builder(work / "envs-cold", cache, 1, 1800)
        out["uv_cold_s"] = cold["seconds"][0]
        assert cold["cache_hit"] == [False], "a cold build reported a cache hit"
        say(f"  {out['uv_cold_s']:.2f} s")
    except Exception as exc:
        errors["uv_cold_s"] = str(exc)
        say(f"  failed: {exc}")
    if not skip_pip:
        bench_pip(work, out)
    if "uv_cold_s" not in out:
        return
    say("== Lapis builder, new root, warm uv cache; then cache hits on that root")
    try:
        warm = builder(work / "envs-warm", cache, 1 + cfg["hit_repeats"], 600)
        out["uv_warm_s"] = warm["seconds"][0]
        hits = warm["seconds"][1:]
        assert all(warm["cache_hit"][1:]), "ensure() on a built root rebuilt"
        out["cache_hit_ms"] = statistics.median(hits) * 1000
        out["cache_hit_samples_ms"] = [s * 1000 for s in hits]
        out["env_digest"] = warm["digest"]
        say(f"  new env {out['uv_warm_s']:.2f} s; cache hit {out['cache_hit_ms']:.2f} ms")
    except Exception as exc:
        errors["uv_warm_s"] = errors["cache_hit_ms"] = str(exc)
        say(f"  failed: {exc}")


# --- phase 2: jobs through the server --------------------------------------------------------
class Api:
    def __init__(self, srv: h.ServerHandle) -> None:
        self.http = httpx.Client(
            base_url=srv.url, headers={"Authorization": f"Bearer {srv.token}"}, timeout=60
        )

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kw: Any) -> Any:
        resp = self.http.request(method, path, **kw)
        if resp.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status_code}: {resp.text[:500]}")
        return resp.json()

    def submit(self, yaml_text: str, base_dir: Path, **extra: Any) -> str:
        body = {"yaml": yaml_text, "source": "bench", "base_dir": str(base_dir), **extra}
        return str(self.call("POST", "/api/v1/jobs", json=body)["name"])

    def job(self, name: str) -> dict[str, Any]:
        job: dict[str, Any] = self.call("GET", f"/api/v1/jobs/{name}")
        return job

    def wait(
        self, name: str, statuses: set[str], t0: float, timeout_s: float = 120
    ) -> tuple[float, dict[str, Any]]:
        """Poll every 10 ms until the job reaches one of `statuses`; (seconds since t0, job)."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(name)
            if job["status"] in statuses:
                return time.perf_counter() - t0, job
            if job["status"] in FINAL:
                raise RuntimeError(f"job {name} ended {job['status']}: {job['status_reason']}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {name} still {job['status']} after {timeout_s:.0f} s")
            time.sleep(POLL_S)


def job_yaml(command: str, compute: str = "local", environment: str = "system") -> str:
    return (
        "type: command\n"
        "experiment_name: bench-jobs\n"
        f"command: {json.dumps(command)}\n"
        f"environment: {environment}\n"
        f"compute: {compute}\n"
    )


def event_gap_ms(job: dict[str, Any], start: str, end: str) -> float:
    times: dict[str, int] = {}
    for ev in job["events"]:
        times.setdefault(ev["status"], ev["time"])
    if start not in times or end not in times:
        raise RuntimeError(f"job {job['name']} has no {start}/{end} event: {job['events']}")
    return float(times[end] - times[start])


def ensure_completed(job: dict[str, Any]) -> None:
    if job["status"] != "Completed":
        raise RuntimeError(f"job {job['name']} ended {job['status']}: {job['status_reason']}")


def bench_latency(api: Api, base: Path, cfg: dict[str, Any], out: dict[str, Any]) -> None:
    text = job_yaml("true")
    for _ in range(2):  # warm-up: imports, first supervisor, page cache
        name = api.submit(text, base)
        ensure_completed(api.wait(name, FINAL, time.perf_counter())[1])
    server_ms, client_ms, post_ms = [], [], []
    phases: dict[str, list[float]] = {}
    for _ in range(cfg["latency_jobs"]):
        t0 = time.perf_counter()
        name = api.submit(text, base)
        post_ms.append((time.perf_counter() - t0) * 1000)
        seen, _ = api.wait(name, STARTED, t0)
        client_ms.append(seen * 1000)
        _, job = api.wait(name, FINAL, t0)  # one at a time: the next starts on an idle host
        ensure_completed(job)
        server_ms.append(event_gap_ms(job, "NotStarted", "Running"))
        events = job["events"]
        for a, b in itertools.pairwise(events):
            phases.setdefault(f"{a['status']}→{b['status']}", []).append(b["time"] - a["time"])
    out["latency_post_p50_ms"] = pct(post_ms, 50)
    out["latency_phases_p50_ms"] = {k: pct(v, 50) for k, v in phases.items()}
    say(
        f"  POST /jobs p50 {out['latency_post_p50_ms']:.0f} ms; per step p50 (ms): "
        + ", ".join(f"{k} {v:.0f}" for k, v in out["latency_phases_p50_ms"].items())
    )
    out["latency_server_ms"] = server_ms
    out["latency_client_ms"] = client_ms
    for key, vals in (("server", server_ms), ("client", client_ms)):
        out[f"latency_{key}_p50_ms"] = pct(vals, 50)
        out[f"latency_{key}_p95_ms"] = pct(vals, 95)
    say(
        f"  server p50 {out['latency_server_p50_ms']:.0f} ms, p95 "
        f"{out['latency_server_p95_ms']:.0f}; client p50 {out['latency_client_p50_ms']:.0f} ms"
    )


def bench_overhead(api: Api, base: Path, cfg: dict[str, Any], out: dict[str, Any]) -> None:
    command = 'python -c "print(1)"'
    text = job_yaml(command)
    job_s = []
    for _ in range(cfg["overhead_repeats"]):
        t0 = time.perf_counter()
        name = api.submit(text, base)
        seen, job = api.wait(name, FINAL, t0)
        ensure_completed(job)
        job_s.append(seen)
    # The same command line, same interpreter first on PATH, no Lapis in between.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    bare_s = []
    for _ in range(cfg["overhead_repeats"] + 1):
        t0 = time.perf_counter()
        subprocess.run(["/bin/bash", "-c", command], env=env, check=True, capture_output=True)
        bare_s.append(time.perf_counter() - t0)
    bare_s = bare_s[1:]  # the first one warms the page cache
    out["job_print_ms"] = statistics.median(job_s) * 1000
    out["bare_print_ms"] = statistics.median(bare_s) * 1000
    out["job_print_samples_ms"] = [s * 1000 for s in job_s]
    out["bare_print_samples_ms"] = [s * 1000 for s in bare_s]
    out["job_overhead_ms"] = out["job_print_ms"] - out["bare_print_ms"]
    say(
        f"  job {out['job_print_ms']:.0f} ms vs bare {out['bare_print_ms']:.0f} ms "
        f"(+{out['job_overhead_ms']:.0f} ms)"
    )


def bench_throughput(api: Api, base: Path, cfg: dict[str, Any], out: dict[str, Any]) -> None:
    api.call(
        "POST",
        "/api/v1/computes",
        json={"name": "bench-1c", "type": "computeinstance", "size": "Standard_DS1_v2"},
    )
    deadline = time.monotonic() + 60
    while (state := api.call("GET", "/api/v1/computes/bench-1c")["state"]) != "Running":
        if time.monotonic() > deadline:
            raise RuntimeError(f"compute bench-1c still {state} after 60 s")
        time.sleep(0.1)
    n = cfg["throughput_jobs"]
    text = job_yaml("true", compute="bench-1c")
    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        names = list(pool.map(lambda _: api.submit(text, base), range(n)))
    out["throughput_submit_s"] = time.perf_counter() - t0
    wanted = set(names)
    deadline = time.monotonic() + 60 + n * 5
    while True:
        listing = api.call(
            "GET",
            "/api/v1/jobs",
            params={
                "compute": "bench-1c",
                "status": "Completed,Failed,Canceled",
                "max_results": 1000,
            },
        )["jobs"]
        done = {j["name"]: j for j in listing if j["name"] in wanted}
        if len(done) == n:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(done)}/{n} jobs finished in time")
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    failed = [j["name"] for j in done.values() if j["status"] != "Completed"]
    if failed:
        raise RuntimeError(f"{len(failed)} of {n} jobs did not complete, e.g. {failed[0]}")
    out["throughput_s"] = wall
    out["throughput_jobs_s"] = n / wall
    span = max(j["end_time"] for j in done.values()) - min(j["created_at"] for j in done.values())
    out["throughput_server_span_s"] = span / 1000
    say(
        f"  {n} jobs in {wall:.1f} s = {out['throughput_jobs_s']:.1f} jobs/s "
        f"(submitting took {out['throughput_submit_s']:.1f} s)"
    )


def bench_env_job(api: Api, base: Path, cfg: dict[str, Any], out: dict[str, Any]) -> None:
    (base / "conda.yml").write_text(CONDA)
    text = job_yaml('python -c "import sklearn, pandas"', environment="{conda_file: conda.yml}")
    times = []
    for i in range(2):
        name = api.submit(text, base, conda_file_text=CONDA)
        _, job = api.wait(name, FINAL, time.perf_counter(), timeout_s=900 if i == 0 else 120)
        ensure_completed(job)
        times.append(event_gap_ms(job, "NotStarted", "Running"))
    out["env_job_first_ms"], out["env_job_hit_ms"] = times
    say(f"  first (builds from warm uv cache) {times[0]:.0f} ms; second {times[1]:.0f} ms")


def bench_jobs(work: Path, cfg: dict[str, Any], out: dict[str, Any], skip_env: bool) -> None:
    base = work / "jobs"
    base.mkdir()
    say("== Lapis server")
    # The server (and the supervisors it starts) build environments with phase 1's cache.
    os.environ["UV_CACHE_DIR"] = str(work / "uv-cache")
    with h.start_lapis() as srv:
        say(f"  ready at {srv.url} after {srv.startup_s:.1f} s")
        api = Api(srv)
        try:
            steps: list[tuple[str, str, Callable[..., None]]] = [
                ("latency", "submit→Running, warm system env", bench_latency),
                ("overhead", "whole job vs bare subprocess", bench_overhead),
                ("throughput", "tiny jobs on a 1-core instance", bench_throughput),
            ]
            if not skip_env:
                steps.append(("env_job", "inline-env job twice", bench_env_job))
            for key, title, step in steps:
                say(f"== {title}")
                try:
                    step(api, base, cfg, out)
                except Exception as exc:
                    out["errors"][key] = str(exc)
                    out.setdefault("tracebacks", {})[key] = traceback.format_exc()
                    say(f"  failed: {exc}")
                if srv.proc is None or srv.proc.poll() is not None:
                    out["errors"]["_server"] = "server died:\n" + srv.log_tail()
                    break
        finally:
            api.close()
            if out["errors"]:
                RESULTS_DIR.mkdir(parents=True, exist_ok=True)
                log_copy = RESULTS_DIR / f"jobs-server-{datetime.now():%Y%m%d-%H%M%S}.log"
                shutil.copyfile(srv.home / "server.log", log_copy)
                say(f"  server log kept: {log_copy}")


# --- report --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    step: str  # the step (or error key) that produces it
    target: tuple[str, float] | None = None  # ("<=", bound) or ("x>=", ratio over the anchor)
    anchor: str | None = None  # key of the anchor's figure
    anchor_label: str = ""


LAT = ("<=", 150.0)
ROWS = [
    Row("latency_server_p50_ms", "submit→Running p50 (server events)", "ms", "latency", LAT),
    Row("latency_server_p95_ms", "submit→Running p95 (server events)", "ms", "latency", LAT),
    Row("latency_client_p50_ms", "submit→Running p50 (client, 10 ms poll)", "ms", "latency", LAT),
    Row("latency_client_p95_ms", "submit→Running p95 (client, 10 ms poll)", "ms", "latency", LAT),
    Row(
        "job_print_ms",
        'job `python -c "print(1)"`, submit→Completed',
        "ms",
        "overhead",
        anchor="bare_print_ms",
        anchor_label="bare subprocess.run",
    ),
    Row("job_overhead_ms", "  overhead of the job over bare", "ms", "overhead"),
    Row("throughput_jobs_s", "{n} tiny jobs on a 1-core instance", "jobs/s", "throughput"),
    Row("throughput_s", "  time until all Completed", "s", "throughput"),
    Row(
        "uv_cold_s",
        "env build sklearn+pandas, cold cache",
        "s",
        "uv_cold_s",
        ("x>=", 10),
        anchor="pip_cold_s",
        anchor_label="venv + pip install",
    ),
    Row("uv_warm_s", "  new env from a warm uv cache", "s", "uv_warm_s", ("<=", 1)),
    Row("cache_hit_ms", "  cache hit: ensure() on the same root", "ms", "cache_hit_ms", ("<=", 50)),
    Row("env_job_first_ms", "  inline-env job, 1st: NotStarted→Running", "ms", "env_job"),
    Row("env_job_hit_ms", "  inline-env job, 2nd (cache hit)", "ms", "env_job"),
]


def records(res: dict[str, Any], cfg: dict[str, Any]) -> list[dict[str, Any]]:
    recs = []
    for row in ROWS:
        key, unit, target = row.key, row.unit, row.target
        value = res.get(key)
        anchor = res.get(row.anchor) if row.anchor else None
        ratio = anchor / value if value and anchor else None  # > 1: Lapis faster
        met: bool | None = None
        text = None
        if target is not None:
            op, bound = target
            text = f">= {bound:g}x faster" if op == "x>=" else f"<= {bound:g} {unit}"
            if op == "x>=" and ratio is not None:
                met = ratio >= bound
            elif op == "<=" and value is not None:
                met = value <= bound
        error = res["errors"].get(row.step) or (res["errors"].get("_server") and value is None)
        recs.append(
            {
                "key": key,
                "label": row.label.format(n=cfg["throughput_jobs"]),
                "unit": unit,
                "value": value,
                "anchor": anchor,
                "anchor_label": row.anchor_label,
                "ratio": ratio,
                "target": text,
                "met": met,
                "error": bool(error),
            }
        )
    return recs


def render(recs: list[dict[str, Any]], title: str) -> None:
    head = ["Measurement", "Unit", "Lapis", "Anchor", "Anchor value", "Ratio", "Target", "Met"]
    body = []
    for r in recs:
        if r["value"] is not None:
            value = rep.fmt(r["value"])
        else:
            value = "error" if r["error"] else "skipped"
        anchor = rep.fmt(r["anchor"]) if r["anchor"] is not None else "-"
        ratio = "-"
        if r["ratio"] is not None:
            x = r["ratio"]
            ratio = f"{rep.fmt(x)}x faster" if x >= 1 else f"{rep.fmt(1 / x)}x slower"
        met = {True: "yes", False: "NO", None: "-" if r["target"] is None else "n/a"}[r["met"]]
        target = r["target"] or "-"
        body.append(
            [r["label"], r["unit"], value, r["anchor_label"] or "-", anchor, ratio, target, met]
        )
    try:
        rep._rich(title, head, body)
    except ImportError:
        print(rep._plain(title, head, body))


# --- main ----------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer jobs and repeats: a smoke run")
    ap.add_argument("--skip-pip", action="store_true", help="skip the slow venv + pip anchor")
    ap.add_argument("--skip-env", action="store_true", help="skip every environment build")
    ap.add_argument("--json", type=Path, help="where to write results (default bench/results/)")
    args = ap.parse_args()
    cfg = QUICK if args.quick else FULL

    # Ctrl+C, SIGTERM and SIGHUP unwind as KeyboardInterrupt: server and children still die.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)

    path = args.json or RESULTS_DIR / f"jobs-{datetime.now():%Y%m%d-%H%M%S}.json"
    started = time.monotonic()
    res: dict[str, Any] = {"errors": {}}
    work = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    try:
        if not args.skip_env:
            bench_environments(work, cfg, args.skip_pip, res)
        bench_jobs(work, cfg, res, args.skip_env)
    except KeyboardInterrupt:
        say("interrupted: server and child processes stopped")
        return 130
    except Exception as exc:  # the server did not start, or similar: still print what we have
        res["errors"]["_run"] = str(exc)
        res.setdefault("tracebacks", {})["_run"] = traceback.format_exc()
        say(f"failed: {exc}")
    finally:
        os.environ.pop("UV_CACHE_DIR", None)
        shutil.rmtree(work, ignore_errors=True)

    recs = records(res, cfg)
    mode = "quick" if args.quick else "full"
    render(recs, f"Jobs & environments benchmark ({mode}) - {os.cpu_count()} cores")
    for key, err in res["errors"].items():
        say(f"error in {key}: {err.splitlines()[0] if err else err}")
    meta = {
        "timestamp": datetime.now().astimezone().isoformat(timespec="seconds"),
        "mode": mode,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "lapis": _version("lapis"),
        "uv": _version("uv"),
        "duration_s": round(time.monotonic() - started, 1),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"meta": meta, "config": cfg, "results": res, "rows": recs}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    say(f"results: {path}  (total {meta['duration_s']:.0f} s)")
    return 0  # as tracking.py: a failed step shows "error" in its rows; `make bench` goes on


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
