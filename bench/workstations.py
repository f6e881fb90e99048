"""Workstations benchmark: a compute instance's JupyterLab, from "start" to a kernel that
answers, and the server's proxy against talking to JupyterLab directly, side by side.

    python bench/workstations.py [--round-trips 300] [--starts 3]

1. **start → usable**: the instance is stopped, then started (``POST …/start``); the
   clock runs until its JupyterLab answers through the proxy, a kernel is started and a
   cell (``1 + 1``) has run over the kernel's WebSocket. Median of ``--starts``.
2. **kernel round trip** (the anchor is JupyterLab itself): one ``execute_request`` →
   reply and idle status, ``--round-trips`` times on one WebSocket — through the Lapis
   proxy (``/compute/<name>/lab/…``, Lapis token) and directly to the lab's loopback
   port (its own token, read from the runtime file Jupyter writes), alternating in the
   same run. Printed: p50/p95 in ms and the ratio.
3. **HTTP**: ``GET /api/contents`` the same way.

Everything runs on this machine; the instance is deleted at the end. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).parent))

import _harness as h


def _wait(what: str, check: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen in {timeout} s")
        time.sleep(0.05)


def _execute(ws: ClientConnection, session: str, code: str) -> None:
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps({
        "header": {"msg_id": msg_id, "username": "bench", "session": session,
                   "msg_type": "execute_request", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False},
    }))  # fmt: skip
    while True:
        msg = json.loads(ws.recv(timeout=60))
        if (msg.get("parent_header", {}).get("msg_id") == msg_id and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"):  # fmt: skip
            return


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=300)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    server = h.start_lapis(label="Lapis")
    name = f"bench-q{uuid.uuid4().hex[:6]}"
    auth = {"Authorization": f"Bearer {server.token}"}
    api = httpx.Client(base_url=server.url, headers=auth, timeout=120)
    lab_url = f"{server.url}/compute/{name}/lab"
    try:
        made = api.post("/api/v1/computes", json={"name": name, "type": "computeinstance",
                                                   "size": "Standard_DS1_v2"})  # fmt: skip
        made.raise_for_status()
        starts = []
        for _ in range(args.starts):
            _wait("Running", lambda: api.get(f"/api/v1/computes/{name}").json()["state"]
                  == "Running")  # fmt: skip
            api.post(f"/api/v1/computes/{name}/stop").raise_for_status()
            _wait("Stopped", lambda: api.get(f"/api/v1/computes/{name}").json()["state"]
                  == "Stopped")  # fmt: skip
            t0 = time.monotonic()
            api.post(f"/api/v1/computes/{name}/start").raise_for_status()
            _wait("JupyterLab", lambda: httpx.get(f"{lab_url}/api/status", headers=auth)
                  .status_code == 200)  # fmt: skip
            kernel = httpx.post(f"{lab_url}/api/kernels", headers=auth,
                                json={"name": "python3"}).json()["id"]  # fmt: skip
            url = server.url.replace("http", "ws", 1)
            session = uuid.uuid4().hex
            with connect(f"{url}/compute/{name}/lab/api/kernels/{kernel}/channels"
                         f"?session_id={session}", additional_headers=auth) as ws:  # fmt: skip
                _execute(ws, session, "1 + 1")
            starts.append(time.monotonic() - t0)
        # side by side: the proxy and JupyterLab's own port
        runtime = next((server.home / "notebooks" / name / "runtime").glob("jpserver-*.json"))
        info = json.loads(runtime.read_text())
        direct_url = f"ws://127.0.0.1:{info['port']}/compute/{name}/lab"
        direct_auth = {"Authorization": f"token {info['token']}"}
        kernel = httpx.post(f"{lab_url}/api/kernels", headers=auth,
                            json={"name": "python3"}).json()["id"]  # fmt: skip
        path = f"/api/kernels/{kernel}/channels?session_id="
        proxied_ws = server.url.replace("http", "ws", 1) + f"/compute/{name}/lab"
        times: dict[str, list[float]] = {"proxy": [], "direct": []}
        one, two = uuid.uuid4().hex, uuid.uuid4().hex  # a session per connection
        via = connect(proxied_ws + path + one, additional_headers=auth)
        own = connect(direct_url + path + two, additional_headers=direct_auth)
        with via, own:
            pairs = (("proxy", via, one), ("direct", own, two))
            for _label, ws, sid in pairs:
                _execute(ws, sid, "1")  # warm
            for _ in range(args.round_trips):
                for label, ws, sid in pairs:
                    t0 = time.perf_counter()
                    _execute(ws, sid, "1")
                    times[label].append(time.perf_counter() - t0)
        http_times: dict[str, list[float]] = {"proxy": [], "direct": []}
        direct_http = f"http://127.0.0.1:{info['port']}/compute/{name}/lab"
        with httpx.Client(headers=auth) as via_http, httpx.Client(headers=direct_auth) as own_http:
            for _ in range(args.round_trips):
                for label, client, base in (("proxy", via_http, lab_url),
                                            ("direct", own_http, direct_http)):  # fmt: skip
                    t0 = time.perf_counter()
                    client.get(f"{base}/api/contents").raise_for_status()
                    http_times[label].append(time.perf_counter() - t0)
    finally:
        api.delete(f"/api/v1/computes/{name}")
        api.close()
        server.cleanup()
    print(f"\nWorkstations: one compute instance's JupyterLab, {args.round_trips} round trips "
          "each way, same machine, same run")  # fmt: skip
    print(
        f"  start → kernel answering (median of {len(starts)}): "
        f"{statistics.median(starts):.2f} s  (each: {', '.join(f'{s:.2f}' for s in starts)})"
    )
    print(f"  {'':<34} {'p50 ms':>8} {'p95 ms':>8}")
    for title, data in (
        ("kernel round trip (WebSocket)", times),
        ("GET /api/contents", http_times),
    ):
        for label in ("direct", "proxy"):
            print(f"  {title + ', ' + label:<34} {_pct(data[label], .5):8.2f} "
                  f"{_pct(data[label], .95):8.2f}")  # fmt: skip
        ratio = statistics.median(data["proxy"]) / statistics.median(data["direct"])
        extra = (statistics.median(data["proxy"]) - statistics.median(data["direct"])) * 1000
        print(f"  {'':<34} proxy / direct {ratio:.2f}x (+{extra:.2f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
