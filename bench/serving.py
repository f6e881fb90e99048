"""Online serving benchmark: one scikit-learn model, four servers, one load generator.

    python bench/serving.py [--quick] [--workers W] [--only mlflow,lapis,ceiling,http] [--json PATH]

The model is a Ridge regression trained on scikit-learn's bundled diabetes data
(442 rows, 10 features) and saved with ``mlflow.sklearn.save_model`` (with a
signature, so MLflow and Lapis enforce the same schema). Every request is the same
2-row ``dataframe_split`` JSON body. Four servers answer it, **one after
another** (never at the same time, so each has the machine to itself), each on
a free loopback port and killed with its whole process tree when its turn ends:

* **MLflow**: ``mlflow models serve -m MODEL --env-manager local -w W``
  (uvicorn, FastAPI), ``POST /invocations``;
* **Lapis**: ``lapis server --home TMP --port 0``; the model registered as an
  ``mlflow_model`` version, an endpoint, and a deployment with no scoring script
  (``instance_count: W``, ``max_concurrent_requests_per_instance: 64``) taking
  100 % of the traffic; ``POST /api/v1/endpoints/{e}/score`` with the endpoint
  key, i.e. the endpoint's full path (key check, traffic pick, proxy to an
  instance, telemetry);
* **uvicorn + predict** (the ceiling for one request at a time): a raw ASGI
  app under ``uvicorn --workers W`` that parses the same body into the same
  pandas frame and calls the same model's ``predict``: no framework, no schema
  check, no proxy hop (and no batching: Lapis can pass it by scoring
  concurrent requests together);
* **uvicorn, HTTP only**: the same app answering with the Ridge coefficients
  applied in numpy (the same numbers): what uvicorn and JSON cost on this box.

Before any load, one request to each server is checked against the model's own
predictions. Then ``wrk`` (the Debian package; a Python load generator would
saturate first on 2 cores) runs a warm-up, and 1, 8 and 32 connections
(``wrk -c N -t min(N,2) --latency``) for a fixed time each, with a Lua script
that POSTs the body with ``Content-Type`` and ``Authorization`` headers (the
same bytes for every server; only Lapis checks the key). The script's
``done()`` prints the figures as JSON: requests/s counts only 2xx answers;
p50/p90/p99 come from wrk's latency histogram. The table puts the four side by
side with Lapis/MLflow ratios; results go to
``bench/results/serving-<timestamp>.json``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent))

import _harness as h
import _report as rep

FULL = {"duration_s": 10, "warmup_s": 3, "levels": [1, 8, 32]}
QUICK = {"duration_s": 3, "warmup_s": 1, "levels": [1, 8, 32]}
RESULTS_DIR = Path(__file__).parent / "results"
SERVERS = ("mlflow", "lapis", "ceiling", "http")
LABELS = {
    "mlflow": "MLflow models serve",
    "lapis": "Lapis endpoint",
    "ceiling": "uvicorn + predict",
    "http": "uvicorn, HTTP only",
}
ENDPOINT, DEPLOYMENT, MODEL = "bench-serving", "blue", "bench-ridge"
MAX_CONCURRENT = 64
READY_TIMEOUT_S = 180.0

# Trains and saves the model in a child process (the orchestrator never imports
# mlflow or sklearn), and prints the request body and the expected predictions.
TRAIN_CHILD = """\
import json, sys, warnings
warnings.filterwarnings("ignore")
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
X, y = load_diabetes(return_X_y=True, as_frame=True)
model = Ridge(alpha=1.0).fit(X, y)
rows = X.iloc[:2]
mlflow.sklearn.save_model(model, sys.argv[1], signature=infer_signature(X, model.predict(X)))
body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}}
print(json.dumps({"body": body, "expected": model.predict(rows).tolist()}))
"""

# The ceilings: the least a Python server must do to answer the same request.
# BENCH_CEILING=ceiling: the body into the same pandas frame, the same model's
# predict(); =http: the same numbers straight from the Ridge coefficients with
# numpy, so what is left is uvicorn and JSON.
CEILING_APP = """\
import json, os, warnings
warnings.filterwarnings("ignore")
import mlflow.sklearn
import numpy as np
import pandas as pd

MODEL = mlflow.sklearn.load_model(os.environ["BENCH_MODEL_DIR"])
PREDICT = os.environ["BENCH_CEILING"] == "ceiling"
HEADERS = [(b"content-type", b"application/json")]


def predict(split):
    if PREDICT:
        return MODEL.predict(pd.DataFrame(split["data"], columns=split["columns"]))
    return np.asarray(split["data"]) @ MODEL.coef_ + MODEL.intercept_


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["method"] == "GET":
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": b"{}"})
        return
    body, more = b"", True
    while more:
        msg = await receive()
        body += msg.get("body", b"")
        more = msg.get("more_body", False)
    out = json.dumps({"predictions": predict(json.loads(body)["dataframe_split"]).tolist()})
    out = out.encode()
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": out})
"""

WRK_LUA = """\
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, '
    .. '"p99_us": %d, "max_us": %d, "mean_us": %.1f}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
"""


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- the model ---------------------------------------------------------------------------
def train(work: Path) -> dict[str, Any]:
    """Train and save the model; returns {"dir", "body", "expected"}."""
    model_dir = work / "model"
    argv = [sys.executable, "-c", TRAIN_CHILD, str(model_dir)]
    done = subprocess.run(
        argv, env=h.clean_env(), capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"training failed:\n{done.stderr[-2000:]}")
    info: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    info["dir"] = model_dir
    return info


def predictions(payload: Any) -> list[float]:
    """MLflow answers {"predictions": [...]}; Lapis' runtime the bare list."""
    if isinstance(payload, dict):
        payload = payload.get("predictions")
    if not isinstance(payload, list):
        raise RuntimeError(f"unexpected answer: {str(payload)[:300]}")
    return [float(v) for v in payload]


def check_answer(url: str, body: dict[str, Any], key: str, expected: list[float]) -> None:
    """One request must give the model's own predictions before any load."""
    headers = {"Authorization": f"Bearer {key}"}
    resp = httpx.post(url, json=body, headers=headers, timeout=30)
    if resp.status_code != 200:
        raise RuntimeError(f"POST {url}: HTTP {resp.status_code}: {resp.text[:500]}")
    got = predictions(resp.json())
    close = len(got) == len(expected) and all(
        abs(a - b) <= 1e-6 for a, b in zip(got, expected, strict=True)
    )
    if not close:
        raise RuntimeError(f"POST {url} answered {got}, the model predicts {expected}")


# --- servers -----------------------------------------------------------------------------
def _spawn(handle: h.ServerHandle, argv: list[str], env: dict[str, str]) -> None:
    log = open(handle.home / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    handle.proc = subprocess.Popen(
        argv,
        cwd=handle.home,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()


def start_mlflow(model_dir: Path, workers: int) -> tuple[h.ServerHandle, str]:
    exe = h.executable("mlflow")
    if exe is None:
        raise RuntimeError("`mlflow` not found: pip install 'lapis[dev]'")
    home = Path(tempfile.mkdtemp(prefix="bench-serve-mlflow-"))
    handle = h.ServerHandle(name="mlflow", label=LABELS["mlflow"], home=home, health_path="/ping")
    try:
        port = h.free_port()
        argv = [
            exe, "models", "serve", "-m", str(model_dir), "--env-manager", "local",
            "-w", str(workers), "-h", "127.0.0.1", "-p", str(port),
        ]  # fmt: skip
        handle.url = f"http://127.0.0.1:{port}"
        # It runs `uvicorn` by name: this interpreter's scripts go first on PATH.
        path = f"{h.BIN}{os.pathsep}{os.environ.get('PATH', '')}"
        _spawn(handle, argv, h.clean_env({"PATH": path}))
        handle.wait_ready()
    except BaseException:
        handle.cleanup()
        raise
    return handle, handle.url + "/invocations"


def start_ceiling(kind: str, model_dir: Path, workers: int) -> tuple[h.ServerHandle, str]:
    home = Path(tempfile.mkdtemp(prefix=f"bench-serve-{kind}-"))
    handle = h.ServerHandle(name=kind, label=LABELS[kind], home=home, health_path="/")
    try:
        (home / "ceiling_app.py").write_text(CEILING_APP)
        port = h.free_port()
        argv = [
            sys.executable, "-m", "uvicorn", "ceiling_app:app", "--host", "127.0.0.1",
            "--port", str(port), "--lifespan", "off", "--no-access-log",
        ]  # fmt: skip
        if workers > 1:
            argv += ["--workers", str(workers)]
        handle.url = f"http://127.0.0.1:{port}"
        env = h.clean_env(
            {"BENCH_MODEL_DIR": str(model_dir), "BENCH_CEILING": kind, "PYTHONPATH": str(home)}
        )
        _spawn(handle, argv, env)
        handle.wait_ready()
    except BaseException:
        handle.cleanup()
        raise
    return handle, handle.url + "/score"


class Api:
    """The Lapis control plane over HTTP, with the user's token."""

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
        return resp.json() if resp.content else {}


def deploy_lapis(srv: h.ServerHandle, model_dir: Path, workers: int, out: dict[str, Any]) -> str:
    """Register, create endpoint + deployment, route all traffic to it; returns the key."""
    exe = h.executable("lapis")
    cli = [exe] if exe else [sys.executable, "-m", "lapis.cli.main"]
    argv = [*cli, "model", "create", "--name", MODEL, "--path", str(model_dir)]
    argv += ["--type", "mlflow_model", "-o", "json"]
    done = subprocess.run(
        argv, env=srv.client_env(), capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"lapis model create failed: {done.stderr.strip()[-1000:]}")
    version = json.loads(done.stdout)["version"]
    api = Api(srv)
    try:
        api.call("POST", "/api/v1/endpoints", json={"name": ENDPOINT, "auth_mode": "key"})
        deployment = {
            "name": DEPLOYMENT,
            "endpoint_name": ENDPOINT,
            "model": f"azureml:{MODEL}:{version}",
            "instance_count": workers,
            "request_settings": {"max_concurrent_requests_per_instance": MAX_CONCURRENT},
        }
        t0 = time.monotonic()
        api.call("POST", f"/api/v1/endpoints/{ENDPOINT}/deployments", json=deployment)
        path = f"/api/v1/endpoints/{ENDPOINT}/deployments/{DEPLOYMENT}"
        while True:
            state = api.call("GET", path)
            prov = state.get("provisioning_state")
            if prov == "Succeeded":
                break
            if prov == "Failed" or time.monotonic() - t0 > READY_TIMEOUT_S:
                raise RuntimeError(f"deployment {DEPLOYMENT} is {prov}: {json.dumps(state)[:800]}")
            time.sleep(0.2)
        out["deploy_s"] = time.monotonic() - t0
        say(f"  deployment Succeeded after {out['deploy_s']:.1f} s")
        api.call("PATCH", f"/api/v1/endpoints/{ENDPOINT}", json={"traffic": {DEPLOYMENT: 100}})
        keys = api.call("POST", f"/api/v1/endpoints/{ENDPOINT}/listKeys")
        return str(keys["primaryKey"])
    finally:
        api.close()


def lapis_telemetry(srv: h.ServerHandle) -> dict[str, Any]:
    """The endpoint's own figures after the load (kept in the JSON; time series dropped)."""
    api = Api(srv)
    try:
        body = api.call("GET", f"/api/v1/endpoints/{ENDPOINT}/metrics", params={"window": 3600})
    except Exception as exc:
        return {"error": str(exc)}
    finally:
        api.close()

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "timeseries"}
        return node

    return dict(strip(body))


def teardown_lapis(srv: h.ServerHandle) -> None:
    """Delete the endpoint (its instances stop) before the server itself is stopped."""
    with contextlib.suppress(Exception):
        api = Api(srv)
        try:
            api.http.delete(f"/api/v1/endpoints/{ENDPOINT}")
        finally:
            api.close()


def kill_leftovers(home: Path) -> None:
    """Any process still naming the server's temporary home (an escaped instance) dies."""
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        with contextlib.suppress(psutil.Error):
            text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
            if proc.info["pid"] != me and str(home) in text:
                proc.kill()


# --- load --------------------------------------------------------------------------------
def wrk(
    url: str, script: Path, conns: int, seconds: int, timeout_s: float = 10.0
) -> dict[str, Any]:
    """One wrk run; the Lua done() prints a WRKJSON line."""
    threads = min(conns, 2)
    argv = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s"]
    argv += ["--timeout", f"{timeout_s:g}s", "--latency", "-s", str(script), url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk exited {done.returncode}: {(done.stderr or done.stdout)[-800:]}")
    raw: dict[str, Any] = json.loads(line[len("WRKJSON ") :])
    secs = raw["duration_us"] / 1e6
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    ok = raw["requests"] - raw["status"]
    return {
        "rps": ok / secs,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "non2xx": raw["status"],
        "socket_errors": errors,
        "raw": raw,
    }


def drive(
    url: str, key: str, body: dict[str, Any], cfg: dict[str, Any], out: dict[str, Any]
) -> None:
    script = Path(tempfile.mkdtemp(prefix="bench-wrk-")) / "post.lua"
    try:
        script.write_text(WRK_LUA.format(body=json.dumps(body), key=key))
        wrk(url, script, 8, cfg["warmup_s"])
        for n in cfg["levels"]:
            try:
                res = wrk(url, script, n, cfg["duration_s"])
            except Exception as exc:
                out["errors"][f"c{n}"] = str(exc)
                say(f"  {n:>2} client(s): failed: {exc}")
                continue
            for k in ("rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "non2xx", "socket_errors"):
                out[f"c{n}_{k}"] = res[k]
            out[f"c{n}_wrk"] = res["raw"]
            bad = f", {res['non2xx']} non-2xx" if res["non2xx"] else ""
            bad += f", {res['socket_errors']} socket errors" if res["socket_errors"] else ""
            say(
                f"  {n:>2} client(s): {res['rps']:,.0f} req/s, p50 {res['p50_ms']:.1f} ms, "
                f"p99 {res['p99_ms']:.1f} ms{bad}"
            )
    finally:
        shutil.rmtree(script.parent, ignore_errors=True)


def bench_server(
    name: str, model: dict[str, Any], workers: int, cfg: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {"label": LABELS[name], "errors": {}}
    say(f"== {LABELS[name]} ({workers} worker{'s' if workers > 1 else ''})")
    t0 = time.monotonic()
    handle: h.ServerHandle | None = None
    try:
        key = "none"
        if name == "mlflow":
            handle, url = start_mlflow(model["dir"], workers)
        elif name in ("ceiling", "http"):
            handle, url = start_ceiling(name, model["dir"], workers)
        else:
            handle = h.start_lapis()
            key = deploy_lapis(handle, model["dir"], workers, out)
            url = f"{handle.url}/api/v1/endpoints/{ENDPOINT}/score"
        out["startup_s"] = time.monotonic() - t0
        say(f"  ready at {url} after {out['startup_s']:.1f} s")
        check_answer(url, model["body"], key, model["expected"])
        drive(url, key, model["body"], cfg, out)
        if name == "lapis":
            out["telemetry"] = lapis_telemetry(handle)
        if handle.proc is not None:
            out["rss_after_mib"] = handle.memory()["rss_mib"]
            out["processes"] = handle.memory()["processes"]
    except Exception as exc:
        out["errors"]["_server"] = str(exc)
        out["traceback"] = traceback.format_exc()
        say(f"  failed: {exc}")
        if handle is not None:
            out["log_tail"] = handle.log_tail(40)
    finally:
        if handle is not None:
            if name == "lapis":
                teardown_lapis(handle)
            home = handle.home
            handle.cleanup()
            kill_leftovers(home)
    return out


# --- report ------------------------------------------------------------------------------
def records(servers: dict[str, dict[str, Any]], cfg: dict[str, Any]) -> list[dict[str, Any]]:
    recs = []
    top = max(cfg["levels"])
    for n in cfg["levels"]:
        for metric, unit, label in (
            ("rps", "req/s", f"{n} client{'s' if n > 1 else ''}: throughput (2xx)"),
            ("p50_ms", "ms", "  p50 latency"),
            ("p99_ms", "ms", "  p99 latency"),
        ):
            key = f"c{n}_{metric}"
            values = {s: servers[s].get(key) for s in servers}
            lapis, base, ceil = values.get("lapis"), values.get("mlflow"), values.get("ceiling")
            higher = metric == "rps"
            ratio = None
            if lapis and base:
                ratio = lapis / base if higher else base / lapis
            of_ceiling = lapis / ceil if higher and lapis and ceil else None
            target, met = None, None
            if n == top and metric == "rps":
                target, met = ">= 5x MLflow", None if ratio is None else ratio >= 5
            elif n == top and metric == "p99_ms":
                target, met = "<= 50 ms", None if lapis is None else lapis <= 50
            bad = {s: servers[s].get(f"c{n}_non2xx", 0) + servers[s].get(f"c{n}_socket_errors", 0)
                   for s in servers}  # fmt: skip
            recs.append(
                {
                    "key": key,
                    "label": label,
                    "unit": unit,
                    "values": values,
                    "failed": {s: _failed(servers[s], n) for s in servers},
                    "errors": bad,
                    "ratio": ratio,
                    "of_ceiling": of_ceiling,
                    "target": target,
                    "met": met,
                }
            )
    return recs


def _failed(server: dict[str, Any], n: int) -> bool:
    return bool(server["errors"].get("_server") or server["errors"].get(f"c{n}"))


def render(recs: list[dict[str, Any]], servers: dict[str, dict[str, Any]], title: str) -> None:
    names = [s for s in SERVERS if s in servers]
    head = ["Measurement", "Unit", *[LABELS[s] for s in names]]
    head += [
        "Lapis vs MLflow (x, >1 = Lapis better)",
        "Lapis / (uvicorn + predict)",
        "Target",
        "Met",
    ]
    body = []
    for r in recs:
        cells = [r["label"], r["unit"]]
        for s in names:
            v = r["values"].get(s)
            cell = rep.fmt(v) if v is not None else ("error" if r["failed"][s] else "n/a")
            if v is not None and r["unit"] == "req/s" and r["errors"].get(s):
                cell += f" ({r['errors'][s]} err)"
            cells.append(cell)
        cells.append(rep.fmt(r["ratio"]) if r["ratio"] is not None else "-")
        cells.append(f"{r['of_ceiling']:.0%}" if r["of_ceiling"] is not None else "-")
        met = {True: "yes", False: "NO", None: "-" if r["target"] is None else "n/a"}[r["met"]]
        cells += [r["target"] or "-", met]
        body.append(cells)
    try:
        rep._rich(title, head, body)
    except ImportError:
        print(rep._plain(title, head, body))


# --- main --------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 s per level instead of 10: a smoke run")
    ap.add_argument(
        "--workers", type=int, default=1, help="MLflow workers = Lapis instances = uvicorn workers"
    )
    ap.add_argument(
        "--only", default=",".join(SERVERS), help="comma-separated subset of " + ",".join(SERVERS)
    )
    ap.add_argument("--duration", type=int, help="seconds per concurrency level (overrides)")
    ap.add_argument("--json", type=Path, help="where to write results (default bench/results/)")
    args = ap.parse_args()
    cfg = dict(QUICK if args.quick else FULL)
    if args.duration:
        cfg["duration_s"] = args.duration
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SERVERS]
    if unknown:
        ap.error(f"--only: unknown {', '.join(unknown)}; choose from {', '.join(SERVERS)}")
    if shutil.which("wrk") is None:
        say("wrk not found: apt-get install -y wrk (make bench does it)")
        return 1

    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)

    path = args.json or RESULTS_DIR / f"serving-{datetime.now():%Y%m%d-%H%M%S}.json"
    started = time.monotonic()
    load_start = os.getloadavg()
    if load_start[0] > 1.0:
        say(f"note: the machine is busy (load {load_start[0]:.1f}): the figures will be noisy")
    servers: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    model: dict[str, Any] = {}
    try:
        say("== training Ridge on the diabetes data, mlflow.sklearn.save_model")
        model = train(work)
        for name in SERVERS:  # one after another, in this order, whatever --only's order
            if name in only:
                servers[name] = bench_server(name, model, args.workers, cfg)
    except KeyboardInterrupt:
        say("interrupted: servers stopped")
        return 130
    except Exception as exc:
        errors["_run"] = str(exc)
        say(f"failed: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    recs = records(servers, cfg)
    mode = "quick" if args.quick else "full"
    title = (
        f"Serving benchmark ({mode}, {cfg['duration_s']} s per level, {args.workers} worker(s)) "
        f"- {os.cpu_count()} cores"
    )
    render(recs, servers, title)
    for name, res in servers.items():
        for key, err in res["errors"].items():
            say(f"error in {name} {key}: {err.splitlines()[0] if err else err}")
    meta = {
        "timestamp": datetime.now().astimezone().isoformat(timespec="seconds"),
        "mode": mode,
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "lapis": _version("lapis"),
        "mlflow": _version("mlflow"),
        "wrk": _wrk_version(),
        "duration_s": round(time.monotonic() - started, 1),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "meta": meta,
        "config": cfg,
        "request": model.get("body"),
        "servers": servers,
        "errors": errors,
        "rows": recs,
    }
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    say(f"results: {path}  (total {meta['duration_s']:.0f} s)")
    return 0  # as the other benches: a failed server shows "error" in its cells


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _wrk_version() -> str | None:
    with contextlib.suppress(Exception):
        done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
        return (done.stdout or done.stderr).splitlines()[0].strip()
    return None


if __name__ == "__main__":
    sys.exit(main())
