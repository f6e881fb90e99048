"""The scoring data plane on a real server with real instance processes.

The server runs in-process (uvicorn in a thread) so that the test can publish
routes into ``ws.routes`` itself, standing in for the deployment control
plane; the instances are real ``lapis.endpoints.runtime.scoring`` processes running a
pure-Python scoring script. Requests go over real sockets with httpx, each
with a client timeout, so that a hang fails the test instead of stalling it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn

from lapis.config import Settings
from lapis.endpoints.data.routing import DeploymentRoute, EndpointRoute, Instance
from lapis.server.app import create_app
from lapis.server.context import Workspace

PG_URL = os.environ.get("LAPIS_TEST_DATABASE_URL")

SCORE = """\
import json, os, time

NAME = None

def init():
    global NAME
    NAME = open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "name.txt")).read().strip()

def run(raw_data):
    data = json.loads(raw_data)
    if data.get("sleep"):
        time.sleep(data["sleep"])
    if data.get("x") == "boom":
        raise RuntimeError("secret internal detail")
    return {"served_by": NAME, "pid": os.getpid(), "echo": data.get("x")}
"""


@dataclass
class Serving:
    ws: Workspace
    url: str
    token: str
    tmp: Path
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)

    def start_instance(self, deployment: str, index: int) -> Instance:
        label = f"{deployment}-{index}"
        model = self.tmp / f"model-{deployment}"
        model.mkdir(exist_ok=True)
        (model / "name.txt").write_text(deployment)
        port_file = self.tmp / f"{label}.port"
        with open(self.tmp / f"{label}.log", "wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lapis.endpoints.runtime.scoring",
                    *("--port", "0", "--port-file", str(port_file), "--model-dir", str(model)),
                    *("--scoring-script", str(self.tmp / "score.py")),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[label] = proc
        deadline = time.monotonic() + 30
        while not port_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "instance did not start"
            time.sleep(0.02)
        port = int(port_file.read_text())
        while httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "instance never became ready"
            time.sleep(0.02)
        inst = Instance(deployment, index, 1, "127.0.0.1", port, ready=True)
        self.instances[label] = inst
        return inst

    def publish(
        self,
        endpoint: str,
        deployments: dict[str, list[str]],
        traffic: dict[str, int],
        mirror: dict[str, int] | None = None,
        max_concurrent: int = 32,
        timeout_ms: int = 5000,
    ) -> None:
        routes = {
            name.lower(): DeploymentRoute(
                name, [self.instances[label] for label in labels], max_concurrent, timeout_ms
            )
            for name, labels in deployments.items()
        }
        self.ws.routes.publish(
            EndpointRoute(endpoint, self.keys[endpoint], traffic, mirror or {}, routes)
        )

    def client(self, endpoint: str, timeout: float = 10) -> httpx.Client:
        key = self.keys[endpoint][0]
        return httpx.Client(
            base_url=f"{self.url}/api/v1/endpoints/{endpoint}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=timeout,
        )

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10
        )


def _database(kind: str) -> tuple[str | None, str | None]:
    if kind == "sqlite":
        return None, None
    if not PG_URL:
        pytest.skip("LAPIS_TEST_DATABASE_URL not set: PostgreSQL store tests skipped")
    import uuid

    import psycopg

    name = f"lapis_t_{uuid.uuid4().hex[:12]}"
    admin = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, PG_URL.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def serving(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serving]:
    """A server in this process, endpoints 'shop' and 'other', and instances blue-0/1, green-0."""
    pg_name, db_url = _database(request.param)
    tmp = tmp_path_factory.mktemp(f"proxy-{request.param}")
    ws = Workspace.open(Settings(home=tmp / "home", database_url=db_url))
    assert ws.bootstrap is not None
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(ws), log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    serving = Serving(ws, f"http://127.0.0.1:{port}", ws.bootstrap.token, tmp)
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        for name in ("shop", "other", "unrouted"):
            e = ws.endpoints.create({"name": name, "auth_mode": "key"})
            serving.keys[name] = (e.primary_key, e.secondary_key)
        (tmp / "score.py").write_text(SCORE)
        for label in ("blue-0", "blue-1", "green-0"):
            deployment, index = label.split("-")
            serving.start_instance(deployment, int(index))
        yield serving
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        for proc in serving.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        ws.close()
        sock.close()
        if pg_name:
            import psycopg

            assert PG_URL is not None
            admin = PG_URL.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def _default_routes(s: Serving) -> None:
    s.publish("shop", {"blue": ["blue-0", "blue-1"], "green": ["green-0"]}, {"blue": 100})
    s.publish("other", {"blue": ["blue-0"]}, {"blue": 100})


def test_keys_and_unknown_endpoints(serving: Serving) -> None:
    _default_routes(serving)
    url = f"{serving.url}/api/v1/endpoints/shop/score"
    body = {"x": 1}
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {serving.keys['other'][0]}"},  # another endpoint's key
        {"Authorization": f"Bearer {serving.token}"},  # a user token is not an endpoint key
        {"Authorization": f"Basic {serving.keys['shop'][0]}"},
    ):
        r = httpx.post(url, json=body, headers=headers, timeout=10)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error_code"] == "UNAUTHENTICATED" and r.headers["x-request-id"]
    for key in serving.keys["shop"]:  # primary and secondary both work
        r = httpx.post(url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert r.status_code == 200 and r.json()["served_by"] == "blue"
    missing = httpx.post(
        f"{serving.url}/api/v1/endpoints/nope/score", json=body, headers={}, timeout=10
    )
    assert missing.status_code == 404 and "nope" in missing.json()["message"]
    # an endpoint in the store with nothing deployed: its key is checked in the database
    unrouted = f"{serving.url}/api/v1/endpoints/unrouted/score"
    bad = httpx.post(unrouted, json=body, headers={"Authorization": "Bearer x"}, timeout=10)
    assert bad.status_code == 401
    key = serving.keys["unrouted"][0]
    r = httpx.post(unrouted, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 503 and "no deployment" in r.json()["message"]
    with serving.client("shop") as c:
        assert c.get("/score").status_code == 405


def test_traffic_split_headers_and_passthrough(serving: Serving) -> None:
    serving.publish(
        "shop", {"blue": ["blue-0", "blue-1"], "green": ["green-0"]}, {"blue": 80, "green": 20}
    )
    seen = {"blue": 0, "green": 0}
    with serving.client("shop") as c:
        for i in range(1000):
            r = c.post("/score", json={"x": i})
            assert r.status_code == 200, r.text
            served = r.json()["served_by"]
            assert r.headers["azureml-model-deployment"] == served and r.json()["echo"] == i
            seen[served] += 1
        assert 750 <= seen["blue"] <= 850, seen  # 80 % ± 5 %
        r = c.post("/score", json={"x": 1}, headers={"x-request-id": "my-id-7"})
        assert r.headers["x-request-id"] == "my-id-7"
        assert re.fullmatch(r"[0-9a-f]{32}", c.post("/score", json={}).headers["x-request-id"])
        # the header picks a deployment, case-insensitively, whatever the split says
        for _ in range(20):
            r = c.post("/score", json={}, headers={"azureml-model-deployment": "GREEN"})
            assert r.status_code == 200 and r.json()["served_by"] == "green"
        r = c.post("/score", json={}, headers={"azureml-model-deployment": "red"})
        assert r.status_code == 404 and "blue, green" in r.json()["message"]
        # the instance's own errors pass through, with its request id and no traceback
        boom = c.post("/score", json={"x": "boom"}, headers={"azureml-model-deployment": "blue"})
        assert boom.status_code == 500 and boom.json()["request_id"]
        assert "secret internal detail" not in boom.text and "Traceback" not in boom.text
        bad = c.post("/score", content=b"{not json")
        assert bad.status_code == 500  # run() parses the body itself: its error, its answer
    serving.publish("shop", {"blue": ["blue-0"]}, {})
    with serving.client("shop") as c:
        r = c.post("/score", json={})
        assert r.status_code == 503 and "no traffic set; set --traffic" in r.json()["message"]
        r = c.post("/score", json={}, headers={"azureml-model-deployment": "blue"})
        assert r.status_code == 200  # the header still reaches a deployment without traffic


def test_mirror_traffic_reaches_the_shadow(serving: Serving) -> None:
    serving.publish(
        "shop",
        {"blue": ["blue-0", "blue-1"], "green": ["green-0"]},
        {"blue": 100},
        mirror={"green": 50},
    )
    green = serving.ws.telemetry.series("shop", "green")
    before = green.mirrored
    # the series is the module's: another test may have left green a 500 of its own
    codes_before = dict(green.by_code)
    with serving.client("shop") as c:
        for i in range(200):
            r = c.post("/score", json={"x": i})
            assert r.status_code == 200 and r.json()["served_by"] == "blue"
            assert r.headers["azureml-model-deployment"] == "blue"
    deadline = time.monotonic() + 10
    while serving.ws.telemetry.series("shop", "green").mirrored - before < 50:
        assert time.monotonic() < deadline, "mirrored requests never reached green"
        time.sleep(0.05)
    mirrored = green.mirrored - before
    assert 50 <= mirrored <= 150  # 50 % of 200, with room for chance
    # each mirrored request was answered by green: served, or refused by its own
    # admission limit when a slow machine let copies pile up (never an error)
    codes = {c: n - codes_before.get(c, 0) for c, n in green.by_code.items()}
    answered = codes.get(200, 0) + codes.get(429, 0)
    assert answered >= mirrored and codes.get(200, 0) > 0, codes
    assert not any(code >= 500 and n for code, n in codes.items()), codes
    report = serving.ws.telemetry.report("shop")
    assert report["deployments"]["green"]["mirrored"] >= mirrored


def test_capacity_429_and_timeout_408(serving: Serving) -> None:
    serving.publish("shop", {"green": ["green-0"]}, {"green": 100}, max_concurrent=1)
    inst = serving.instances["green-0"]
    with ThreadPoolExecutor(1) as pool, serving.client("shop", timeout=20) as c:
        slow = pool.submit(c.post, "/score", json={"sleep": 1.5})
        deadline = time.monotonic() + 10
        while inst.in_flight < 1:
            assert time.monotonic() < deadline and not slow.done()
            time.sleep(0.01)
        with serving.client("shop", timeout=1.0) as quick:  # answered at once, never queued
            for _ in range(3):
                r = quick.post("/score", json={})
                assert r.status_code == 429, r.text
                body = r.json()
                assert "max_concurrent_requests_per_instance=1" in body["message"]
                assert body["request_id"] == r.headers["x-request-id"]
        assert slow.result().status_code == 200
    serving.publish("shop", {"green": ["green-0"]}, {"green": 100}, timeout_ms=300)
    with serving.client("shop") as c:
        r = c.post("/score", json={"sleep": 1.0})
        assert r.status_code == 408 and "request_timeout_ms=300" in r.json()["message"]
        assert r.headers["azureml-model-deployment"] == "green"
    assert inst.in_flight == 0 and inst.ready  # a timeout is no failure of the instance
    serving.publish("shop", {"green": ["green-0"]}, {"green": 100})
    with serving.client("shop") as c:
        assert c.post("/score", json={}).status_code == 200


def test_killed_instance_sibling_or_503_never_hang(serving: Serving) -> None:
    failures: list[str] = []
    serving.ws.routes.on_failure(lambda endpoint, inst: failures.append(inst.label))
    a = serving.start_instance("red", 0)
    b = serving.start_instance("red", 1)
    serving.publish("shop", {"red": ["red-0", "red-1"]}, {"red": 100})
    statuses: list[int] = []
    with ThreadPoolExecutor(2) as pool, serving.client("shop", timeout=10) as c:
        # one slow request on each instance (least in flight), then kill one of them
        slow = [pool.submit(c.post, "/score", json={"sleep": 1.0}) for _ in range(2)]
        deadline = time.monotonic() + 10
        while a.in_flight + b.in_flight < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.killpg(serving.procs["red-1"].pid, signal.SIGKILL)
        serving.procs["red-1"].wait(timeout=10)
        for r in (f.result() for f in slow):  # the killed one was retried on the sibling
            assert r.status_code == 200, r.text
            assert r.json()["pid"] == serving.procs["red-0"].pid
        for _ in range(30):
            r = c.post("/score", json={})
            statuses.append(r.status_code)
            assert r.status_code == 200 or (
                r.status_code == 503 and r.headers["retry-after"] == "1"
            ), r.text
    assert "red/1@1" in failures and not b.ready
    assert statuses.count(200) == 30  # the sibling serves everything
    # the last instance dies too: 503 with Retry-After and a reason, at once
    os.killpg(serving.procs["red-0"].pid, signal.SIGKILL)
    serving.procs["red-0"].wait(timeout=10)
    with serving.client("shop", timeout=5) as c:
        for _ in range(3):
            r = c.post("/score", json={})
            assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
            assert "red" in r.json()["message"]
    assert "red/0@1" in failures


def test_telemetry_api_and_prometheus(serving: Serving) -> None:
    down = Instance("down", 0, 1, "127.0.0.1", 9, ready=False)  # starting: never routed to
    serving.instances["down-0"] = down
    serving.publish(
        "shop",
        {"blue": ["blue-0", "blue-1"], "green": ["green-0"], "down": ["down-0"]},
        {"blue": 100},
    )
    with serving.client("shop") as c:
        for i in range(20):
            assert c.post("/score", json={"x": i}).status_code == 200
        r = c.post("/score", json={}, headers={"azureml-model-deployment": "down"})
        assert r.status_code == 503 and "1 instance(s) starting" in r.json()["message"]
        assert c.post("/score", json={}, headers={"authorization": "Bearer no"}).status_code == 401
    with serving.admin() as admin:
        m = admin.get("/api/v1/endpoints/shop/metrics", params={"window": 120}).json()
        totals = m["totals"]
        assert totals["requests"] >= 20 and totals["by_class"]["2xx"] >= 20
        assert totals["errors"] >= 1 and totals["by_code"]["503"] >= 1
        assert totals["latency_ms"]["p50"] > 0
        assert totals["latency_ms"]["p99"] >= totals["latency_ms"]["p50"]
        blue = m["deployments"]["blue"]
        assert blue["requests"] >= 20 and blue["recent"]["requests"] >= 20
        assert [i["ready"] for i in blue["instances"]] == [True, True]
        assert blue["instance_states"] == {"ready": 2, "starting": 0, "draining": 0}
        series = m["timeseries"]
        assert len(series["t"]) == len(series["requests"]) == 120
        assert sum(series["requests"]) >= 20 and any(p for p in series["p99_ms"] if p)
        assert admin.get("/api/v1/endpoints/nope/metrics").status_code == 404
        text = admin.get("/metrics")
        assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
        body = text.text
        count = re.search(
            r'^lapis_endpoint_requests_total\{endpoint="shop",deployment="blue",code="200"\} '
            r"(\d+)$",
            body,
            re.M,
        )
        assert count is not None and int(count.group(1)) >= 20
        assert re.search(
            r'^lapis_endpoint_requests_total\{endpoint="shop",deployment="",code="401"\} \d+$',
            body,
            re.M,
        )
        assert re.search(
            r'_bucket\{endpoint="shop",deployment="blue",le="\+Inf"\} (\d+)', body
        ) and re.search(r'_count\{endpoint="shop",deployment="blue"\} \d+', body)
        assert 'lapis_deployment_instances{endpoint="shop",deployment="blue",state="ready"} 2' in (
            body
        )
        assert 'lapis_endpoint_inflight{endpoint="shop",deployment="blue"} 0' in body
        assert (
            'lapis_deployment_instances{endpoint="shop",deployment="down",state="starting"} 1'
            in (body)
        )
    assert httpx.get(f"{serving.url}/metrics", timeout=10).status_code == 401


def test_cli_invoke(serving: Serving) -> None:
    _default_routes(serving)
    request = serving.tmp / "req.json"
    request.write_text('{"x": 41}')
    env = {**os.environ, "LAPIS_URL": serving.url, "LAPIS_TOKEN": serving.token}
    env["LAPIS_HOME"] = str(serving.tmp / "home")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lapis", "online-endpoint", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    ok = cli("invoke", "shop", "--request-file", str(request), "--deployment", "green")
    assert ok.returncode == 0, ok.stderr
    assert '"served_by": "green"' in ok.stdout and '"echo": 41' in ok.stdout
    wrong = cli("invoke", "shop", "--request-file", str(request), "--deployment", "red")
    assert wrong.returncode == 1
    lines = wrong.stderr.strip().splitlines()
    assert len(lines) == 1 and "HTTP 404" in lines[0] and "request id" in lines[0], wrong.stderr
    show = cli("show", "shop")
    assert show.returncode == 0, show.stderr
    assert re.search(r"requests\s+\d+ \(\d+ errors", show.stdout), show.stdout
    assert re.search(r"green\s+\d+ .*instances 1 ready", show.stdout), show.stdout


def test_mlflow_micro_batching_keeps_each_answer(tmp_path: Path) -> None:
    """Concurrent requests to an sklearn model are scored in batches, each answer its own."""
    import mlflow.sklearn
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]], [1.0, 1.0, 4.0])
    mlflow.sklearn.save_model(model, str(tmp_path / "m"))
    port_file = tmp_path / "port"
    with open(tmp_path / "instance.log", "wb") as log:
        proc = subprocess.Popen(
            [
                *(
                    sys.executable,
                    "-m",
                    "lapis.endpoints.runtime.scoring",
                    "--port",
                    "0",
                    "--mlflow-model",
                ),
                *("--port-file", str(port_file), "--model-dir", str(tmp_path / "m")),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text()}"
        while httpx.get(f"{url}/ready", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "model never loaded"
            time.sleep(0.05)

        def score(i: int) -> tuple[int, httpx.Response]:
            rows = (
                [["bad", 1.0]] if i % 25 == 7 else [[float(i), 1.0], [1.0, float(i)]][: 1 + i % 2]
            )
            body = {"dataframe_split": {"columns": [0, 1], "data": rows}}
            return i, httpx.post(f"{url}/score", json=body, timeout=30)

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(score, range(300)))
        for i, r in results:
            if i % 25 == 7:  # a bad row fails its own request only
                assert r.status_code == 400 and "bad request" in r.json()["error"], r.text
                continue
            assert r.status_code == 200, r.text
            rows = [[float(i), 1.0], [1.0, float(i)]][: 1 + i % 2]
            assert r.json() == pytest.approx(model.predict(rows).tolist())
        assert httpx.get(f"{url}/health", timeout=5).json()["status"] == "alive"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
