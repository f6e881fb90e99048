"""Scoring through a real server end to end: CLI-made deployments, the endpoint's URL,
keys, traffic, mirror traffic, errors and a killed instance.

Unlike test_scoring_proxy.py (routes published by hand into an in-process app),
everything here goes through ``lapis server``: the control plane starts the
instance processes and the scoring route finds them on its own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from jobkit import http_for, lapis_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "endpoints"
REQUEST = json.loads((EXAMPLE / "sample-request.json").read_text())
ANSWERS = {"blue": [4.75, -1.5], "green": [5.2, -2.0]}  # model-1 and model-2 on the sample


def ok(server: Any, *args: str) -> Any:
    proc = lapis_cli(server, *args, "-o", "json")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def deployment(server: Any, ep: str, name: str) -> dict[str, Any]:
    with http_for(server) as http:
        d: dict[str, Any] = http.get(f"/api/v1/endpoints/{ep}/deployments/{name}")
        return d


def until(what: str, check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


def test_scoring_through_the_server(lapis_server: Any, tmp_path: Path) -> None:
    ep = f"e2e-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "endpoints"
    shutil.copytree(EXAMPLE, folder)
    for yml in folder.glob("*.yml"):
        yml.write_text(yml.read_text().replace("my-endpoint", ep))
    blue = (folder / "blue.yml").read_text().replace("instance_count: 1", "instance_count: 2")
    (folder / "blue.yml").write_text(blue)
    ok(lapis_server, "online-endpoint", "create", "-f", str(folder / "endpoint.yml"))
    ok(lapis_server, "online-deployment", "create", "-f", str(folder / "blue.yml"), "--all-traffic")
    ok(lapis_server, "online-deployment", "create", "-f", str(folder / "green.yml"))
    ok(lapis_server, "online-endpoint", "update", ep, "--traffic", "blue=80", "green=20")

    uri = ok(lapis_server, "online-endpoint", "show", ep)["scoring_uri"]
    keys = ok(lapis_server, "online-endpoint", "get-credentials", ep)
    auth = {"Authorization": f"Bearer {keys['primaryKey']}"}
    with httpx.Client(timeout=10) as http:
        # 1,000 requests at 80/20 land within ±5 points of the split, each answered by the
        # model of the deployment its header names.
        served: Counter[str] = Counter()
        for _ in range(1000):
            r = http.post(uri, json=REQUEST, headers=auth)
            assert r.status_code == 200, r.text
            name = r.headers["azureml-model-deployment"]
            assert r.json() == ANSWERS[name] and r.headers["x-request-id"]
            served[name] += 1
        assert 750 <= served["blue"] <= 850, served
        pinned = http.post(uri, json=REQUEST, headers={**auth, "azureml-model-deployment": "green"})
        assert pinned.json() == ANSWERS["green"]

        # Mirror: green takes no live traffic but gets a copy of ~20 % of it.
        ok(lapis_server, "online-endpoint", "update", ep, "--traffic", "blue=100", "green=0")
        ok(lapis_server, "online-endpoint", "update", ep, "--mirror-traffic", "green=20")
        for _ in range(200):
            r = http.post(uri, json=REQUEST, headers=auth)
            assert r.status_code == 200 and r.json() == ANSWERS["blue"], r.text
            assert r.headers["azureml-model-deployment"] == "blue"

        def mirrored() -> dict[str, Any] | None:
            with http_for(lapis_server) as api:
                m: dict[str, Any] = api.get(f"/api/v1/endpoints/{ep}/metrics")
            return m if m["deployments"].get("green", {}).get("mirrored") else None

        metrics = until("mirrored copies in green's telemetry", mirrored)
        assert 15 <= metrics["deployments"]["green"]["mirrored"] <= 70, metrics["deployments"]

        # Keys: a wrong key and a user token are refused; a regenerated key stops working.
        assert (
            http.post(uri, json=REQUEST, headers={"Authorization": "Bearer nope"}).status_code
            == 401
        )
        user = {"Authorization": f"Bearer {lapis_server.token}"}
        assert http.post(uri, json=REQUEST, headers=user).status_code == 401
        ok(lapis_server, "online-endpoint", "regenerate-keys", ep, "--key-type", "primary")
        assert http.post(uri, json=REQUEST, headers=auth).status_code == 401
        new = ok(lapis_server, "online-endpoint", "get-credentials", ep)["primaryKey"]
        auth = {"Authorization": f"Bearer {new}"}
        assert http.post(uri, json=REQUEST, headers=auth).status_code == 200
        assert http.post(uri, json=REQUEST, headers={
            "Authorization": f"Bearer {keys['secondaryKey']}"}).status_code == 200  # fmt: skip

        # Malformed payload: 400 with the reason. A script that raises: 500 with a request
        # id, and the traceback in the deployment log only.
        bad = http.post(uri, content=b'{"data": [[1, 2', headers={
            **auth, "Content-Type": "application/json"})  # fmt: skip
        assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"], bad.text
        boom = http.post(uri, json={"data": [[1.0, 2.0]]}, headers=auth)  # wrong width
        assert boom.status_code == 500 and "Traceback" not in boom.text
        rid = boom.json()["request_id"]

        def log_with_request() -> str | None:
            text = str(
                ok(lapis_server, "online-deployment", "get-logs", "-e", ep, "-n", "blue")["log"]
            )
            return text if rid in text else None

        log = until("the traceback in the deployment log", log_with_request)
        assert "Traceback" in log and "zip()" in log

        # Kill a blue instance while requests flow: each is answered by its sibling or 503
        # with Retry-After, none hangs; the instance comes back and the restart is logged.
        victim = next(i for i in deployment(lapis_server, ep, "blue")["instances"] if i["ready"])
        codes: Counter[int] = Counter()
        problems: list[str] = []  # what the load threads saw go wrong (asserted below)
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(timeout=10) as client:
                while not stop.is_set():
                    try:
                        r = client.post(uri, json=REQUEST, headers=auth)
                    except httpx.TimeoutException as exc:
                        problems.append(f"hung: {exc!r}")
                        continue
                    if r.status_code not in (200, 503) or (
                        r.status_code == 503 and not r.headers.get("retry-after")
                    ):
                        problems.append(f"{r.status_code} {r.headers} {r.text}")
                    codes[r.status_code] += 1

        worker = threading.Thread(target=load)
        worker.start()
        try:
            time.sleep(0.3)
            os.kill(victim["pid"], signal.SIGKILL)
            back = until(
                "the killed instance restarted and ready",
                lambda: [
                    i
                    for i in deployment(lapis_server, ep, "blue")["instances"]
                    if i["index"] == victim["index"] and i["ready"] and i["restarts"] >= 1
                ],
            )
            time.sleep(0.3)
        finally:
            stop.set()
            worker.join(timeout=30)
        assert not worker.is_alive(), "a scoring request hung"
        assert not problems, problems[:5]
        assert back[0]["pid"] != victim["pid"] and codes[200] > 0, codes
        log = ok(lapis_server, "online-deployment", "get-logs", "-e", ep, "-n", "blue")["log"]
        assert f"instance {victim['index']} exited (code -9); restarting" in log

        # Roll blue over to model-2 under load: no request fails, and afterwards blue
        # answers with the new model.
        seen: Counter[str] = Counter()
        stop.clear()

        def steady() -> None:
            with httpx.Client(timeout=10) as client:
                while not stop.is_set():
                    try:
                        r = client.post(uri, json=REQUEST, headers=auth)
                    except httpx.TimeoutException as exc:
                        problems.append(f"hung: {exc!r}")
                        continue
                    if r.status_code != 200:
                        problems.append(f"{r.status_code} {r.text}")
                        continue
                    seen[json.dumps(r.json())] += 1

        worker = threading.Thread(target=steady)
        worker.start()
        try:
            (folder / "blue.yml").write_text(blue.replace("path: model-1", "path: model-2"))
            rolled = ok(lapis_server, "online-deployment", "update", "-f", str(folder / "blue.yml"))
            assert rolled["provisioning_state"] == "Succeeded" and rolled["generation"] == 2
            time.sleep(0.5)
        finally:
            stop.set()
            worker.join(timeout=30)
        assert not worker.is_alive(), "a scoring request hung during the rollover"
        assert not problems, problems[:5]
        assert len(seen) == 2, seen  # answers from both generations: the load spanned the switch
        assert set(seen) <= {json.dumps(ANSWERS["blue"]), json.dumps(ANSWERS["green"])}, seen
        after = http.post(uri, json=REQUEST, headers=auth)
        assert (
            after.json() == ANSWERS["green"] and after.headers["azureml-model-deployment"] == "blue"
        )
    ok(lapis_server, "online-endpoint", "update", ep, "--mirror-traffic", "green=0")
    ok(lapis_server, "online-endpoint", "delete", ep, "--yes")
