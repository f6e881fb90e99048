"""The client-side workload, run in a subprocess against whatever server the env names.

The orchestrator (bench/tracking.py) starts this script once per server with
MLFLOW_TRACKING_URI (and, for Lapis, MLFLOW_TRACKING_TOKEN) set, so every
server sees byte-for-byte the same mlflow-client calls from the same process
layout. Each step writes its figures into the --out JSON as soon as it ends,
so a step that fails (or a server that dies) costs that row, not the run.

Timed sections contain only the client call under test: entities are built,
files written and results checked outside the timers.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import multiprocessing as mp
import os
import queue
import random
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Result = dict[str, Any]
CHUNK = 1 << 20


def log(msg: str) -> None:
    print(f"    {msg}", file=sys.stderr, flush=True)


def now_ms() -> int:
    return int(time.time() * 1000)


def client() -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def new_experiment(c: Any, step: str) -> str:
    return str(c.create_experiment(f"bench-{step}-{uuid.uuid4().hex[:8]}"))


def auth_headers() -> dict[str, str]:
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


def base_url() -> str:
    return os.environ["MLFLOW_TRACKING_URI"].rstrip("/")


def metric_batch(key: str, start_step: int, n: int, ts: int) -> list[Any]:
    from mlflow.entities import Metric

    return [Metric(key, float(i % 997) / 997.0, ts, start_step + i) for i in range(n)]


# --------------------------------------------------------------------------- steps


def step_single(cfg: Result) -> Iterator[Result]:
    """Single log_metric calls: latency of one round trip through the client."""
    c = client()
    run_id = c.create_run(new_experiment(c, "single")).info.run_id
    for i in range(10):  # warm the connection and the server's code paths
        c.log_metric(run_id, "warmup", float(i), step=i)
    n = cfg["single_calls"]
    lat = []
    t0 = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        c.log_metric(run_id, "m", i * 0.5, timestamp=now_ms(), step=i)
        lat.append(time.perf_counter() - t)
    total = time.perf_counter() - t0
    lat.sort()
    yield {
        "single_pts_s": n / total,
        "single_p50_ms": statistics.median(lat) * 1000,
        "single_p95_ms": lat[int(0.95 * (n - 1))] * 1000,
    }


def step_batch(cfg: Result) -> Iterator[Result]:
    """log_batch of 1,000 points at a time from one process."""
    c = client()
    run_id = c.create_run(new_experiment(c, "batch")).info.run_id
    size, n = cfg["batch_size"], cfg["batch_calls"]
    ts = now_ms()
    batches = [metric_batch("loss", b * size, size, ts) for b in range(n + 1)]
    c.log_batch(run_id, metrics=batches.pop())  # warm-up
    t0 = time.perf_counter()
    for b in batches:
        c.log_batch(run_id, metrics=b)
    total = time.perf_counter() - t0
    yield {"batch_pts_s": n * size / total, "batch_call_ms": total / n * 1000}


def _proc_worker(exp_id: str, calls: int, size: int, barrier: Any, out: Any) -> None:
    """One of the concurrent clients: set up, wait for the others, then log."""
    c = client()
    run_id = c.create_run(exp_id).info.run_id
    ts = now_ms()
    batches = [metric_batch("loss", b * size, size, ts) for b in range(calls)]
    c.log_metric(run_id, "warmup", 0.0)
    barrier.wait(timeout=600)
    t0 = time.monotonic()
    for b in batches:
        c.log_batch(run_id, metrics=b)
    out.put((t0, time.monotonic()))


def step_procs(cfg: Result) -> Iterator[Result]:
    """N client processes logging batches at once; wall time from the common start."""
    c = client()
    exp_id = new_experiment(c, "procs")
    n, calls, size = cfg["procs"], cfg["procs_calls"], cfg["batch_size"]
    ctx = mp.get_context("spawn")  # no inherited connection pools
    barrier, out = ctx.Barrier(n), ctx.Queue()
    workers = [
        ctx.Process(target=_proc_worker, args=(exp_id, calls, size, barrier, out)) for _ in range(n)
    ]
    for w in workers:
        w.start()
    spans: list[tuple[float, float]] = []
    try:
        while len(spans) < n:
            try:
                spans.append(out.get(timeout=1.0))
            except queue.Empty:
                dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"a client process failed (exit codes {dead})") from None
    finally:
        for w in workers:
            w.join(timeout=5)
            if w.is_alive():
                w.kill()
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    yield {"procs_pts_s": n * calls * size / wall, "procs_wall_s": wall}


class Runs(list[Any]):
    """Search results, plus how many requests it took to page through them."""

    pages = 0


def _page_all(c: Any, exp_id: str, **kw: Any) -> Runs:
    runs = Runs()
    token = None
    while True:
        page = c.search_runs([exp_id], max_results=1000, page_token=token, **kw)
        runs.extend(page)
        runs.pages += 1
        token = page.token
        if not token:
            return runs


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def step_search(cfg: Result) -> Iterator[Result]:
    """Create runs with params and metrics, then search them three ways."""
    import requests
    from mlflow.entities import Metric, Param

    c = client()
    exp_id = new_experiment(c, "search")
    n, reps = cfg["search_runs"], cfg["repeats"]
    rng = random.Random(42)
    ts = now_ms()
    expected: list[tuple[float, int]] = []
    payloads = []
    for i in range(n):
        values = [rng.random() for _ in range(10)]
        params = [Param(f"p{k}", f"v{(i + k) % 10}") for k in range(10)]
        metrics = [Metric(f"m{k}", v, ts, 0) for k, v in enumerate(values)]
        payloads.append((params, metrics))
        if values[3] > 0.5 and (i + 1) % 10 == 1:
            expected.append((values[0], i))
    t0 = time.perf_counter()
    for i, (params, metrics) in enumerate(payloads):
        run_id = c.create_run(exp_id, run_name=f"r{i}").info.run_id
        c.log_batch(run_id, metrics=metrics, params=params)
    yield {"create_runs_s": time.perf_counter() - t0}

    client_s, runs = _timed(lambda: _page_all(c, exp_id), reps)
    if len(runs) != n:
        raise AssertionError(f"client search found {len(runs)} runs, expected {n}")
    yield {"search_client_s": client_s, "search_client_pages": runs.pages}

    url = base_url() + "/api/2.0/mlflow/runs/search"
    body: dict[str, Any] = {"experiment_ids": [exp_id], "max_results": 1000}

    def raw() -> bytes:
        resp = requests.post(url, json=body, headers=auth_headers(), timeout=600)
        resp.raise_for_status()
        return resp.content

    raw_s, content = _timed(raw, reps)
    got = len(json.loads(content).get("runs", []))
    if got != min(n, 1000):
        raise AssertionError(f"raw search returned {got} runs, expected {min(n, 1000)}")
    yield {"search_raw_s": raw_s}

    flt = "metrics.m3 > 0.5 and params.p1 = 'v1'"
    filtered_s, hits = _timed(
        lambda: _page_all(c, exp_id, filter_string=flt, order_by=["metrics.m0 DESC"]), reps
    )
    want = [f"r{i}" for _, i in sorted(expected, key=lambda e: -e[0])]
    if [r.info.run_name for r in hits] != want:
        raise AssertionError(f"filtered search: {len(hits)} runs, expected {len(want)} in order")
    yield {"search_filtered_s": filtered_s, "search_filtered_hits": len(hits)}


def step_history(cfg: Result) -> Iterator[Result]:
    """Log a long metric in batches, read it back whole, then ask for the UI's chart sample."""
    import requests

    c = client()
    run_id = c.create_run(new_experiment(c, "history")).info.run_id
    n, size = cfg["history_points"], cfg["batch_size"]
    ts = now_ms()
    batches = [metric_batch("loss", s, min(size, n - s), ts) for s in range(0, n, size)]
    t0 = time.perf_counter()
    for b in batches:
        c.log_batch(run_id, metrics=b)
    yield {"history_ingest_pts_s": n / (time.perf_counter() - t0)}

    t0 = time.perf_counter()
    hist = c.get_metric_history(run_id, "loss")
    history_s = time.perf_counter() - t0
    if len(hist) != n:
        raise AssertionError(f"history has {len(hist)} points, expected {n}")
    yield {"history_s": history_s}

    # The same read as one raw request, to tell server time from the client's parsing.
    hist_url = base_url() + "/api/2.0/mlflow/metrics/get-history"
    t0 = time.perf_counter()
    resp = requests.get(
        hist_url, params={"run_id": run_id, "metric_key": "loss"}, headers=auth_headers()
    )
    resp.raise_for_status()
    raw_body = resp.content
    raw_s = time.perf_counter() - t0
    body = json.loads(raw_body)
    if len(body.get("metrics", [])) == n and not body.get("next_page_token"):
        yield {"history_raw_s": raw_s}

    url = base_url() + "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"
    params = {"run_ids": run_id, "metric_key": "loss", "max_results": 320}

    def chart() -> bytes:
        resp = requests.get(url, params=params, headers=auth_headers(), timeout=600)
        resp.raise_for_status()
        return resp.content

    chart()  # warm-up
    chart_s, content = _timed(chart, cfg["chart_repeats"])
    points = len(json.loads(content).get("metrics", []))
    if not 0 < points <= 400:
        raise AssertionError(f"chart query returned {points} points, expected about 320")
    yield {"chart_ms": chart_s * 1000, "chart_points": points}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def step_artifact(cfg: Result) -> Iterator[Result]:
    """One large file up and down through the server's artifact proxy."""
    c = client()
    run = c.create_run(new_experiment(c, "artifact"))
    uri = run.info.artifact_uri
    if not uri.startswith("mlflow-artifacts:"):
        raise AssertionError(f"artifact URI {uri!r} does not go through the proxy")
    mib = cfg["artifact_mib"]
    with tempfile.TemporaryDirectory(prefix="bench-art-") as tmp:
        src = Path(tmp) / "blob.bin"
        with src.open("wb") as f:
            for _ in range(mib):
                f.write(os.urandom(CHUNK))
        digest = _sha256(src)
        t0 = time.perf_counter()
        c.log_artifact(run.info.run_id, str(src))
        yield {"artifact_up_mib_s": mib / (time.perf_counter() - t0)}
        dst = Path(tmp) / "down"
        dst.mkdir()
        t0 = time.perf_counter()
        got = Path(c.download_artifacts(run.info.run_id, "blob.bin", str(dst)))
        down_s = time.perf_counter() - t0
        if _sha256(got) != digest:
            raise AssertionError("downloaded artifact differs from the upload")
    yield {"artifact_down_mib_s": mib / down_s}


def step_sdk(cfg: Result) -> Iterator[Result]:
    """Lapis' native SDK: n log_metric calls, then end_run waits for the flush."""
    try:
        # Typed as Any: the SDK may not exist yet, and this must not fail type checks then.
        lapis: Any = importlib.import_module("lapis")
        start_run, log_metric, end_run = lapis.start_run, lapis.log_metric, lapis.end_run
    except (ImportError, AttributeError) as exc:
        yield {"sdk_pts_s": None, "sdk_note": f"n/a: native SDK not available ({exc})"}
        return
    n = cfg["sdk_points"]
    t0 = time.perf_counter()
    run = start_run(experiment_name=f"bench-sdk-{uuid.uuid4().hex[:8]}")
    for i in range(n):
        log_metric("x", i * 0.5, step=i)
    t_loop = time.perf_counter()
    end_run()
    total = time.perf_counter() - t0
    yield {"sdk_loop_pts_s": n / (t_loop - t0)}
    run_id = getattr(run, "run_id", None) or getattr(getattr(run, "info", None), "run_id", None)
    if run_id:  # check the last point was acknowledged (not timed)
        import httpx

        resp = httpx.get(f"{base_url()}/api/v1/runs/{run_id}", headers=auth_headers())
        resp.raise_for_status()
        last = resp.json()["metrics"]["x"]["step"]
        if last != n - 1:
            raise AssertionError(f"latest step on the server is {last}, expected {n - 1}")
    yield {"sdk_pts_s": n / total, "sdk_verified": bool(run_id)}


STEPS: dict[str, Callable[[Result], Iterator[Result]]] = {
    "single": step_single,
    "batch": step_batch,
    "procs": step_procs,
    "search": step_search,
    "history": step_history,
    "artifact": step_artifact,
    "sdk": step_sdk,
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--steps", required=True, help="comma-separated: " + ",".join(STEPS))
    ap.add_argument("--config", required=True, help="JSON counts (see tracking.py)")
    args = ap.parse_args()
    cfg = json.loads(args.config)
    results: Result = {"_errors": {}}
    for name in args.steps.split(","):
        t0 = time.perf_counter()
        try:
            for part in STEPS[name](cfg):  # partial figures survive a later failure
                results.update(part)
                args.out.write_text(json.dumps(results))
            log(f"{name}: done in {time.perf_counter() - t0:.1f} s")
        except Exception as exc:
            results["_errors"][name] = f"{type(exc).__name__}: {exc}"
            results.setdefault("_tracebacks", {})[name] = traceback.format_exc()
            log(f"{name}: FAILED: {type(exc).__name__}: {exc}")
        args.out.write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
