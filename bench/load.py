"""Load benchmark: 32 concurrent clients mixing writes and reads, on each store.

    python bench/load.py [--quick] [--seconds S] [--clients N] [--json PATH]

One mixed MLflow-protocol workload — ``runs/log-batch`` (100 points), metric
history, ``runs/search`` and 64 KiB artifact uploads through the artifact proxy —
is driven for a fixed time by N concurrent clients (asyncio, in a separate
process) against, one after another: MLflow's own server (SQLite, its default
workers), Lapis on SQLite, and Lapis on PostgreSQL (when
``LAPIS_BENCH_DATABASE_URL`` or the local ``postgresql://postgres@127.0.0.1/test``
answers). It reports throughput, p50/p99 latency, errors and the server's memory
growth, and the ratio of each Lapis row to MLflow's. The issue that asked for it
measured Lapis before its access-control work at 230 req/s, p99 610 ms (SQLite)
and 159 req/s, p99 510 ms (PostgreSQL).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import _harness as h

RESULTS_DIR = Path(__file__).parent / "results"
PG_ADMIN = os.environ.get("LAPIS_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")

DRIVER = r"""
import asyncio, json, os, random, sys, time
import httpx

url, token, seconds, clients = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
M = "/api/2.0/mlflow"
headers = {"Authorization": f"Bearer {token}"} if token != "-" else {}
blob = os.urandom(64 * 1024)


async def main():
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120,
                                 limits=httpx.Limits(max_connections=clients)) as c:
        exp = (await c.post(f"{M}/experiments/create",
                            json={"name": f"load-{random.random()}"})).json()["experiment_id"]
        runs = []
        for _ in range(8):
            r = (await c.post(f"{M}/runs/create", json={"experiment_id": exp})).json()["run"]
            root = r["info"]["artifact_uri"].split("mlflow-artifacts:/", 1)[1].lstrip("/")
            runs.append((r["info"]["run_id"], root))
        lat = {"log-batch": [], "history": [], "search": [], "artifact": []}
        errors = []
        stop = time.monotonic() + seconds
        step = [0]

        async def one(kind):
            run_id, root = random.choice(runs)
            step[0] += 1
            n = step[0]
            if kind == "log-batch":
                now = int(time.time() * 1000)
                body = {"run_id": run_id, "metrics": [
                    {"key": f"m{i % 5}", "value": random.random(), "step": n * 100 + i,
                     "timestamp": now} for i in range(100)]}
                return await c.post(f"{M}/runs/log-batch", json=body)
            if kind == "history":
                return await c.get(f"{M}/metrics/get-history",
                                   params={"run_id": run_id, "metric_key": "m0",
                                           "max_results": 1000})
            if kind == "search":
                return await c.post(f"{M}/runs/search",
                                    json={"experiment_ids": [exp], "max_results": 50,
                                          "filter": "metrics.m0 > 0.1"})
            return await c.put(f"/api/2.0/mlflow-artifacts/artifacts/{root}/f{n}.bin",
                               content=blob)

        kinds = ["log-batch"] * 5 + ["history"] * 2 + ["search"] * 2 + ["artifact"]

        async def worker():
            while time.monotonic() < stop:
                kind = random.choice(kinds)
                t0 = time.perf_counter()
                try:
                    r = await one(kind)
                    ok = r.status_code == 200
                    detail = f"{r.status_code} {r.text[:120]}"
                except Exception as exc:
                    ok, detail = False, repr(exc)[:160]
                lat[kind].append(time.perf_counter() - t0)
                if not ok:
                    errors.append(f"{kind}: {detail}")

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.monotonic() - t0
    every = sorted(x for v in lat.values() for x in v)
    def pct(xs, q):
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else None
    print(json.dumps({
        "requests": len(every), "seconds": wall, "rps": len(every) / wall,
        "p50_ms": pct(every, 0.50), "p99_ms": pct(every, 0.99),
        "errors": len(errors), "error_samples": errors[:5],
        "by_kind": {k: {"n": len(v), "p99_ms": pct(sorted(v), 0.99)} for k, v in lat.items()},
    }))

asyncio.run(main())
"""


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pg_database() -> tuple[str, str] | None:
    try:
        import psycopg
    except ImportError:
        return None
    name = f"lapis_bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        say(f"PostgreSQL not available ({exc}); skipping the PostgreSQL row")
        return None
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return name, f"{base}/{name}"


def drop_pg(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drive(server: h.ServerHandle, seconds: float, clients: int) -> dict[str, Any]:
    h.wait_idle(server.proc.pid if server.proc else 0, max_wait_s=10)
    before = server.memory()
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, server.url, server.token or "-", str(seconds), str(clients)],
        capture_output=True,
        text=True,
        env=h.clean_env(),
        timeout=seconds + 300,
    )
    if out.returncode != 0:
        raise RuntimeError(f"load driver failed against {server.label}:\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    after = server.memory()
    result["rss_before_mib"] = before.get("rss_mib")
    result["rss_after_mib"] = after.get("rss_mib")
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 s per server instead of 60 s")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    results: dict[str, dict[str, Any]] = {}
    pg = pg_database()
    plans: list[tuple[str, Any]] = [
        ("MLflow (SQLite)", lambda: h.start_mlflow(None)),
        ("Lapis (SQLite)", lambda: h.start_lapis(label="Lapis (SQLite)")),
    ]
    if pg is not None:
        plans.append(("Lapis (PostgreSQL)", lambda: h.start_lapis(pg[1], "Lapis (PostgreSQL)")))
    try:
        for label, start in plans:
            say(f"{label}: {args.clients} clients for {seconds:.0f} s …")
            with start() as server:
                results[label] = drive(server, seconds, args.clients)
            r = results[label]
            say(f"  {r['rps']:.0f} req/s, p99 {r['p99_ms']:.0f} ms, errors {r['errors']}")
    finally:
        if pg is not None:
            drop_pg(pg[0])
    base = results.get("MLflow (SQLite)")
    print(
        f"\nMixed load, {args.clients} clients, {seconds:.0f} s each "
        "(log-batch 50%, history 20%, search 20%, 64 KiB artifact 10%)\n"
    )
    print(
        f"{'server':<20} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
        f"{'RSS MiB before→after':>22} {'req/s vs MLflow':>16}"
    )
    for label, r in results.items():
        ratio = f"{r['rps'] / base['rps']:.2f}x" if base and label != "MLflow (SQLite)" else ""
        mem = f"{r['rss_before_mib'] or 0:.0f}→{r['rss_after_mib'] or 0:.0f}"
        print(
            f"{label:<20} {r['rps']:>8.0f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
            f"{r['errors']:>7} {mem:>22} {ratio:>16}"
        )
        for sample in r["error_samples"]:
            print(f"    error: {sample}")
    RESULTS_DIR.mkdir(exist_ok=True)
    target = args.json or RESULTS_DIR / f"load-{datetime.now():%Y%m%d-%H%M%S}.json"
    target.write_text(
        json.dumps({"seconds": seconds, "clients": args.clients, "results": results}, indent=2)
    )
    print(f"\nwritten to {target}")
    return 1 if any(r["errors"] for label, r in results.items() if label.startswith("Lapis")) else 0


if __name__ == "__main__":
    sys.exit(main())
