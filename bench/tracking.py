"""Tracking benchmark: MLflow's own server vs Lapis, driven by the same mlflow-client workload.

    python bench/tracking.py [--quick] [--only lapis|mlflow] [--json PATH] [--baseline PATH]

Servers run one after another, never at the same time, so each has the
machine to itself: a do-nothing server (bench/_noop.py: the ceiling a single
client call can reach on this machine, measured with the single-call step
only), MLflow's default `mlflow server` (4 uvicorn workers),
`mlflow server --workers 1`, then `lapis server`. Each gets a fresh temp home
(SQLite backend, proxied artifacts in a temp root) and a free loopback port,
and is killed with its whole process tree when its turn ends, on Ctrl+C or on
error. The workload runs in client subprocesses (bench/_client.py), never in
this process. See bench/README.md for what each row measures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import _harness as h
import _report as rep

FULL = {
    "single_calls": 2000,
    "batch_calls": 100,
    "batch_size": 1000,
    "procs": 8,
    "procs_calls": 20,
    "search_runs": 1000,
    "repeats": 3,
    "history_points": 100_000,
    "chart_repeats": 7,
    "artifact_mib": 50,
    "sdk_points": 1_000_000,
    "paired_rounds": 7,
    "paired_calls": 1000,
}
QUICK = {
    "single_calls": 100,
    "batch_calls": 10,
    "batch_size": 1000,
    "procs": 2,
    "procs_calls": 5,
    "search_runs": 100,
    "repeats": 1,
    "history_points": 10_000,
    "chart_repeats": 3,
    "artifact_mib": 5,
    "sdk_points": 100_000,
    "paired_rounds": 3,
    "paired_calls": 200,
}
MLFLOW_STEPS = ["single", "batch", "procs", "search", "history", "artifact"]
RESULTS_DIR = Path(__file__).parent / "results"


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def warm_up(srv: h.ServerHandle) -> None:
    """One authenticated request, so idle memory includes a served request's imports."""
    req = urllib.request.Request(
        srv.url + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default",
        headers={"Authorization": f"Bearer {srv.token}"} if srv.token else {},
    )
    try:
        urllib.request.urlopen(req, timeout=30).close()
    except Exception as exc:
        say(f"  warm-up request failed: {exc}")


def paired_ceiling(cfg: dict[str, Any], rounds: int, timeout: float) -> dict[str, Any]:
    """The no-op server and Lapis side by side: alternating rounds of the single-call step.

    Both servers are up (each idle while the other is measured) and take turns, the
    first turn alternating, so a slow spell of a shared machine lands on both rather
    than on whichever ran then. The share is the median of the rounds' shares.
    """
    say(f"== ceiling: no-op and Lapis side by side, {rounds} alternating rounds")
    rates: dict[str, list[float]] = {"noop": [], "lapis": []}
    p50s: dict[str, list[float]] = {"noop": [], "lapis": []}
    step_cfg = json.dumps({**cfg, "single_calls": cfg["paired_calls"]})
    with h.start_noop() as noop, h.start_lapis() as lapis:
        warm_up(lapis)
        servers = {"noop": noop, "lapis": lapis}
        for r in range(rounds):
            order = ("noop", "lapis") if r % 2 == 0 else ("lapis", "noop")
            for name in order:
                rc, res = h.run_client(
                    servers[name], ["--steps", "single", "--config", step_cfg], timeout
                )
                if "single_pts_s" not in res:
                    return {
                        "error": f"{name} round {r + 1}: client exited {rc}: {res.get('_error')}"
                    }
                rates[name].append(res["single_pts_s"])
                p50s[name].append(res["single_p50_ms"])
            noop_rate, lapis_rate = rates["noop"][-1], rates["lapis"][-1]
            say(f"  round {r + 1}: no-op {noop_rate:,.0f}, Lapis {lapis_rate:,.0f} calls/s")
    shares = [lp / nr for lp, nr in zip(rates["lapis"], rates["noop"], strict=True)]
    return {
        "rounds": rounds,
        "calls_per_round": cfg["paired_calls"],
        "noop": statistics.median(rates["noop"]),
        "lapis": statistics.median(rates["lapis"]),
        "share": statistics.median(shares),
        "shares": shares,
        "noop_p50_ms": statistics.median(p50s["noop"]),
        "lapis_p50_ms": statistics.median(p50s["lapis"]),
    }


def bench_server(
    start: Callable[[], h.ServerHandle],
    label: str,
    cfg: dict[str, Any],
    sdk: bool,
    timeout: float,
    log_dir: Path,
    only_steps: list[str] | None = None,
) -> dict[str, Any]:
    say(f"== {label}: starting")
    try:
        srv = start()
    except Exception as exc:
        say(f"  {label} could not start: {exc}")
        return {"label": label, "errors": {"_client": f"server did not start: {exc}"}}
    with srv:
        say(f"  ready at {srv.url} after {srv.startup_s:.1f} s; waiting for idle")
        warm_up(srv)
        assert srv.proc is not None
        t_idle = time.monotonic()
        h.wait_idle(srv.proc.pid)
        idle = srv.memory()
        say(
            f"  idle after {time.monotonic() - t_idle:.0f} s: "
            f"{idle['rss_mib']:.0f} MiB RSS in {idle['processes']} processes"
        )
        out: dict[str, Any] = {
            "label": label,
            "url": srv.url,
            "startup_s": srv.startup_s,
            "idle_rss_mib": idle["rss_mib"],
            "idle_pss_mib": idle["pss_mib"],
            "idle_processes": idle["processes"],
            "errors": {},
        }
        t0 = time.monotonic()
        first = only_steps or MLFLOW_STEPS
        steps = [*first, "sdk"] if sdk else first
        for group in (first, ["sdk"]) if sdk else (first,):
            rc, res = h.run_client(
                srv, ["--steps", ",".join(group), "--config", json.dumps(cfg)], timeout
            )
            out["errors"].update(res.pop("_errors", {}))
            out.setdefault("tracebacks", {}).update(res.pop("_tracebacks", {}))
            if "_error" in res or (rc != 0 and not res):
                out["errors"]["_client" if group is first else "sdk"] = res.pop(
                    "_error", f"client exited with code {rc}"
                )
            out.update(res)
        out["workload_s"] = time.monotonic() - t0
        after = srv.memory()
        out["after_rss_mib"] = after["rss_mib"]
        out["after_processes"] = after["processes"]
        if srv.proc is None or srv.proc.poll() is not None:
            out["errors"]["_server"] = "server died during the workload:\n" + srv.log_tail()
        if out["errors"] and (srv.home / "server.log").exists():  # its home goes on exit
            log_copy = log_dir / f"{srv.name}-{datetime.now():%Y%m%d-%H%M%S}.log"
            log_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(srv.home / "server.log", log_copy)
            out["server_log"] = str(log_copy)
            say(f"  server log kept: {log_copy}")
        say(f"  workload ({', '.join(steps)}) took {out['workload_s']:.0f} s; stopping")
    say(f"  stopped in {time.monotonic() - t0 - out['workload_s']:.1f} s")
    for step, err in out["errors"].items():
        say(f"  {label} {step}: {err.splitlines()[0] if err else err}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    ap.add_argument("--only", choices=["lapis", "mlflow"], help="bench only these servers")
    ap.add_argument("--json", type=Path, help="where to write results (default bench/results/)")
    ap.add_argument(
        "--baseline",
        type=Path,
        help="earlier results JSON: fill in servers not run now (e.g. --only lapis)",
    )
    args = ap.parse_args()
    cfg = QUICK if args.quick else FULL

    # Ctrl+C, SIGTERM and SIGHUP all unwind as KeyboardInterrupt, so every server's
    # context manager still kills its process group. SIGINT is set explicitly because
    # a shell starts background jobs with it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)

    plan: list[tuple[str, Callable[[], h.ServerHandle], str, bool]] = [
        ("noop", h.start_noop, "no-op (ceiling)", False),
    ]
    if args.only != "lapis":
        plan += [
            ("mlflow-default", lambda: h.start_mlflow(None), "MLflow default", False),
            ("mlflow-w1", lambda: h.start_mlflow(1), "MLflow --workers 1", False),
        ]
    if args.only != "mlflow":
        plan.append(("lapis", h.start_lapis, "Lapis", True))

    path = args.json or RESULTS_DIR / f"tracking-{datetime.now():%Y%m%d-%H%M%S}.json"
    base: dict[str, Any] = {}
    if args.baseline:  # read it before spending minutes on servers
        try:
            base = json.loads(args.baseline.read_text())
        except (OSError, ValueError) as exc:
            say(f"cannot read baseline {args.baseline}: {exc}")
            return 2
    started = time.monotonic()
    servers: dict[str, dict[str, Any]] = {}
    try:
        for name, start, label, sdk in plan:
            timeout = 300 if args.quick else 1500
            only = ["single"] if name == "noop" else None
            servers[name] = bench_server(start, label, cfg, sdk, timeout, path.parent, only)
        paired = None
        if args.only != "mlflow":
            timeout = 300 if args.quick else 900
            paired = paired_ceiling(cfg, cfg["paired_rounds"], timeout)
    except KeyboardInterrupt:
        say("interrupted: servers stopped")
        return 130
    if args.baseline:
        for name, data in base.get("servers", {}).items():
            if name not in servers:
                servers[name] = {**data, "from_baseline": str(args.baseline)}

    records = rep.build(cfg, servers)
    mode = "quick" if args.quick else "full"
    title = (
        f"Tracking benchmark ({mode}) - {os.cpu_count()} cores, client and server share them; "
        f"ratio > 1 means Lapis is better"
    )
    rep.render(records, servers, title)
    ceiling = rep.ceiling(servers, paired)
    if ceiling:
        say(ceiling["text"])
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "timestamp": datetime.now().astimezone().isoformat(timespec="seconds"),
        "mode": mode,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "mlflow": _version("mlflow"),
        "lapis": _version("lapis"),
        "duration_s": round(time.monotonic() - started, 1),
    }
    doc = {"meta": meta, "config": cfg, "servers": servers, "rows": records, "ceiling": ceiling}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    say(f"results: {path}  (total {meta['duration_s']:.0f} s)")
    return 0


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
