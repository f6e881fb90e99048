"""Studio benchmark: server time of the runs pages at 10,000 runs and of a 1,000,000-point chart.

    python bench/studio.py [--runs 10000] [--points 1000000] [--repeats 20]
                           [--database-url postgresql://…] [--json PATH]

A real ``lapis server --home TMP --port 0`` (URL from ``server.json``, token
from ``credentials.json``; ``--database-url`` for PostgreSQL, whose database
must be empty). The data goes in fast, not through 10,000 client calls:

* an experiment is created over the MLflow API, then its 10,000 runs (3
  params, 3 metrics and the run-name tag each) are inserted with SQLAlchemy
  Core in one transaction straight into the server's store (the tables the
  tracking service writes, with the same shapes);
* one more run gets 1,000,000 points of ``loss`` through the native columnar
  batch API (``POST /api/v1/runs/{id}/log``, 100,000 points a request).

Then, signed in with the studio's cookie like a browser (``POST /signin``),
each page is requested once to warm up and ``--repeats`` times more on a
kept-alive connection; the client-observed time until the body is read gives
p50 and p95. Target (issue 5): under 300 ms each. The server is killed with
its process group at the end, also on error or Ctrl+C; the temporary home
is removed. Results go to ``bench/results/studio-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import random
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).parent))

import _harness as h

RESULTS_DIR = Path(__file__).parent / "results"
TARGET_MS = 300.0
BATCH = 100_000


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def start_server(database_url: str | None) -> h.ServerHandle:
    """`lapis server --port 0` in a temporary home (as bench/_harness.start_lapis), any store."""
    exe = h.executable("lapis")
    argv = [exe] if exe else [sys.executable, "-m", "lapis.cli.main"]
    home = Path(tempfile.mkdtemp(prefix="bench-studio-"))
    handle = h.ServerHandle(name="lapis", label="Lapis", home=home, health_path="/healthz")
    argv += ["server", "--home", str(home), "--port", "0"]
    if database_url:
        argv += ["--database-url", database_url]
    try:
        handle._spawn(argv)
        t0 = time.monotonic()
        while not handle.url:
            handle._check_alive()
            if time.monotonic() - t0 > h.START_TIMEOUT_S:
                raise RuntimeError(f"Lapis wrote no server.json:\n{handle.log_tail()}")
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, KeyError):
                handle.url = json.loads((home / "server.json").read_text())["url"]
            time.sleep(0.1)
        handle.wait_ready()
        handle.token = json.loads((home / "credentials.json").read_text())["token"]
    except BaseException:
        handle.cleanup()
        raise
    return handle


def insert_runs(database_url: str, experiment_id: int, count: int) -> None:
    """10,000 runs with params, tags, latest metrics and one point each, in one transaction."""
    from sqlalchemy import create_engine, func, insert, select

    from lapis.store.sql.tables import latest_metrics, metrics, params, runs, tags

    rng = random.Random(42)
    now = int(time.time() * 1000) - count * 1000
    run_rows, param_rows, tag_rows, series_rows, point_rows = [], [], [], [], []
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        next_sid = int(conn.execute(select(func.max(latest_metrics.c.series_id))).scalar() or 0)
        for i in range(count):
            run_id = f"{i:08x}{rng.getrandbits(96):024x}"
            start = now + i * 1000
            name = f"run-{i:05d}"
            run_rows.append(
                {
                    "run_uuid": run_id,
                    "name": name,
                    "experiment_id": experiment_id,
                    "user_id": "bench",
                    "created_by": "bench",
                    "status": rng.choice(["FINISHED"] * 8 + ["FAILED", "KILLED"]),
                    "start_time": start,
                    "end_time": start + rng.randint(1_000, 600_000),
                    "lifecycle_stage": "active",
                    "artifact_uri": f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts",
                }
            )
            tag_rows.append({"run_uuid": run_id, "key": "mlflow.runName", "value": name})
            for key, value in (
                ("lr", rng.choice(["0.1", "0.01", "0.001"])),
                ("batch_size", rng.choice(["32", "64", "128"])),
                ("optimizer", rng.choice(["adam", "sgd"])),
            ):
                param_rows.append({"run_uuid": run_id, "key": key, "value": value})
            for key in ("acc", "loss", "f1"):
                next_sid += 1
                value = rng.random()
                series_rows.append(
                    {
                        "series_id": next_sid,
                        "run_uuid": run_id,
                        "key": key,
                        "step": 99,
                        "timestamp": start + 500,
                        "value": value,
                        "is_nan": False,
                    }
                )
                point_rows.append(
                    {
                        "series_id": next_sid,
                        "step": 99,
                        "timestamp": start + 500,
                        "value": value,
                        "is_nan": False,
                    }
                )
        for table, rows in (
            (runs, run_rows),
            (tags, tag_rows),
            (params, param_rows),
            (latest_metrics, series_rows),
            (metrics, point_rows),
        ):
            conn.execute(insert(table), rows)
        if conn.dialect.name == "postgresql":  # explicit ids: move the sequence past them
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('latest_metrics', 'series_id'), "
                "(SELECT MAX(series_id) FROM latest_metrics))"
            )
    engine.dispose()


def log_points(http: httpx.Client, run_id: str, points: int) -> None:
    """``loss`` over ``points`` steps, noisy and falling, with spikes: 100,000 a request."""
    rng = random.Random(1)
    t0 = int(time.time() * 1000) - points * 10
    for start in range(0, points, BATCH):
        steps = list(range(start, min(points, start + BATCH)))
        values = [
            2.0 / (1 + s / 20_000) + rng.gauss(0, 0.05) + (5.0 if s % 99_991 == 0 else 0.0)
            for s in steps
        ]
        body = {
            "metrics": {
                "key": ["loss"] * len(steps),
                "value": values,
                "step": steps,
                "timestamp": [t0 + s * 10 for s in steps],
            }
        }
        http.post(f"/api/v1/runs/{run_id}/log", json=body, timeout=300).raise_for_status()


def measure(http: httpx.Client, path: str, repeats: int) -> dict[str, Any]:
    t = time.perf_counter()
    first = http.get(path)
    first_ms = (time.perf_counter() - t) * 1000
    if first.status_code != 200:
        raise RuntimeError(f"GET {path} answered {first.status_code}: {first.text[:300]}")
    times = []
    size = len(first.content)
    for _ in range(repeats):
        t = time.perf_counter()
        r = http.get(path)
        _ = r.content
        times.append((time.perf_counter() - t) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"GET {path} answered {r.status_code}")
    return {
        "path": path,
        "first_ms": first_ms,
        "p50_ms": pct(times, 50),
        "p95_ms": pct(times, 95),
        "max_ms": max(times),
        "bytes": size,
        "samples_ms": times,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    out: dict[str, Any] = {
        "meta": {
            "when": datetime.now().isoformat(timespec="seconds"),
            "host": platform.node(),
            "python": platform.python_version(),
            "store": "postgresql" if args.database_url else "sqlite",
        },
        "config": {"runs": args.runs, "points": args.points, "repeats": args.repeats},
        "rows": [],
    }
    say("starting lapis server …")
    with start_server(args.database_url) as srv:
        db_url = args.database_url or f"sqlite:///{(srv.home / 'lapis.db').resolve()}"
        bearer = {"Authorization": f"Bearer {srv.token}"}
        with httpx.Client(base_url=srv.url, headers=bearer, timeout=120) as api:
            made = api.post("/api/2.0/mlflow/experiments/create", json={"name": "bench-studio"})
            made.raise_for_status()
            exp_id = int(made.json()["experiment_id"])
            t = time.perf_counter()
            insert_runs(db_url, exp_id, args.runs)
            out["setup_runs_s"] = time.perf_counter() - t
            say(f"{args.runs:,} runs inserted in {out['setup_runs_s']:.1f} s")
            big = api.post(
                "/api/v1/runs", json={"experiment_id": str(exp_id), "run_name": "big-series"}
            )
            big.raise_for_status()
            big_id = big.json()["run_id"]
            t = time.perf_counter()
            log_points(api, big_id, args.points)
            out["setup_points_s"] = time.perf_counter() - t
            say(f"{args.points:,} points logged in {out['setup_points_s']:.1f} s")

        with httpx.Client(base_url=srv.url, timeout=120) as browser:
            signed = browser.post("/signin", data={"token": srv.token, "next": "/"})
            if signed.status_code != 303 or "lapis_token" not in browser.cookies:
                raise RuntimeError(f"sign-in failed: {signed.status_code}")
            later = "eyJvZmZzZXQiOiA1MDAwfQ=="  # base64 of {"offset": 5000}: page 101
            filt = quote("metrics.acc > 0.5 and params.optimizer = 'adam'")
            pages = [
                ("experiments list", "/experiments"),
                (f"runs page (first 50 of {args.runs + 1:,})", f"/experiments/{exp_id}"),
                (
                    "runs page, filtered + sorted",
                    f"/experiments/{exp_id}?filter={filt}&order_by=metrics.loss+ASC",
                ),
                ("runs page, page 101", f"/experiments/{exp_id}?page_token={quote(later)}"),
                (f"run page ({args.points:,}-point run)", f"/runs/{big_id}"),
                (
                    f"series JSON, {args.points:,} → 1,000, step",
                    f"/ui/runs/{big_id}/metric-series?keys=loss&x=step&points=1000",
                ),
                (
                    f"series JSON, {args.points:,} → 1,000, time",
                    f"/ui/runs/{big_id}/metric-series?keys=loss&x=time&points=1000",
                ),
            ]
            for label, path in pages:
                row = measure(browser, path, args.repeats)
                row["label"] = label
                out["rows"].append(row)
                say(f"{label}: p50 {row['p50_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms")
            series = browser.get(pages[-2][1]).json()["series"]["loss"]
            out["series_points"] = len(series["x"])
            out["series_total"] = series["total"]
            if series["total"] != args.points or max(series["y"]) < 5.0:
                raise RuntimeError("the downsampled series lost points or its spikes")

    print(f"\nStudio, {args.runs:,} runs + {args.points:,} points ({out['meta']['store']})")
    head = f"| {'page':<40} | {'1st ms':>7} | {'p50 ms':>7} | {'p95 ms':>7} | {'KiB':>6} |"
    print(head + " target < 300 ms |")
    print(f"|{'-' * 42}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 8}|{'-' * 17}|")
    for row in out["rows"]:
        met = "met" if row["p95_ms"] < TARGET_MS else "NOT met"
        print(
            f"| {row['label']:<40} | {row['first_ms']:>7.1f} | {row['p50_ms']:>7.1f} "
            f"| {row['p95_ms']:>7.1f} "
            f"| {row['bytes'] / 1024:>6.1f} | {met:<15} |"
        )
    RESULTS_DIR.mkdir(exist_ok=True)
    path = args.json or RESULTS_DIR / f"studio-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
