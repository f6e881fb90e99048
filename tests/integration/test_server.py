"""The server's own contract: files it writes, how it stores tokens, the routes it serves."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import threading
import time
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.stores("sqlite", "postgres")


def test_home_files_and_hashed_token(lapis_server: Any) -> None:
    info = json.loads((lapis_server.home / "server.json").read_text())
    assert info["url"] == lapis_server.url and info["pid"] == lapis_server.proc.pid
    creds_path = lapis_server.home / "credentials.json"
    assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600
    creds = json.loads(creds_path.read_text())
    assert creds["user"] == "admin" and creds["token"].startswith("lapis_")
    if lapis_server.database_url is None:
        db = sqlite3.connect(lapis_server.home / "lapis.db")
        try:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            dump = "\n".join(db.iterdump())
        finally:
            db.close()
        assert creds["token"] not in dump
        assert creds["token"][6:] not in dump


def test_healthz_openapi_and_aliases(lapis_server: Any) -> None:
    assert httpx.get(f"{lapis_server.url}/healthz").json()["status"] == "ok"
    with lapis_server.client() as c:
        paths = c.get("/openapi.json").json()["paths"]
        assert "/api/v1/runs" in paths and "/api/2.0/mlflow/runs/search" in paths
        for prefix in ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow"):
            r = c.get(f"{prefix}/experiments/get", params={"experiment_id": "0"})
            assert r.json()["experiment"]["name"] == "Default"
        assert c.get("/api/v1/whoami").json()["name"] == "admin"
        missing = c.get("/api/2.0/mlflow/no-such-thing")
        assert missing.status_code == 404 and missing.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_runs_record_who_created_them(lapis_server: Any) -> None:
    with lapis_server.client() as c:
        run = c.post("/api/v1/runs", json={"experiment_name": "who", "run_name": "mine"}).json()
        assert run["created_by"] == "admin"
        again = c.get(f"/api/v1/runs/{run['run_id']}").json()
        assert again["created_by"] == "admin" and again["run_name"] == "mine"
        listed = c.get("/api/v1/runs", params={"experiment": "who"}).json()["runs"]
        assert [r["run_id"] for r in listed] == [run["run_id"]]


def test_restart_keeps_the_admin_token(fresh_server: Any) -> None:
    token = fresh_server.token
    fresh_server.stop()
    assert not (fresh_server.home / "server.json").exists()
    fresh_server.start()
    assert fresh_server.token == token
    with fresh_server.client() as c:
        assert c.get("/api/v1/whoami").status_code == 200


def test_server_json_and_log_line(lapis_server: Any) -> None:
    info = json.loads((lapis_server.home / "server.json").read_text())
    assert info["url"] == f"http://127.0.0.1:{info['port']}"
    assert abs(info["started_at"] - time.time() * 1000) < 24 * 3600 * 1000
    creds = json.loads((lapis_server.home / "credentials.json").read_text())
    assert creds["url"] == lapis_server.url
    log = (lapis_server.home.parent / f"{lapis_server.home.name}-server.log").read_text()
    assert f"Lapis server at {lapis_server.url}" in log


def test_token_stored_only_as_a_hash(lapis_server: Any) -> None:
    """The raw token is in credentials.json and nowhere in the tokens table (on either store)."""
    token = lapis_server.token
    if lapis_server.database_url is None:
        db = sqlite3.connect(lapis_server.home / "lapis.db")
        try:
            rows = db.execute("SELECT * FROM tokens").fetchall()
        finally:
            db.close()
    else:
        import psycopg

        dsn = lapis_server.database_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn) as conn:
            rows = conn.execute("SELECT * FROM tokens").fetchall()
    assert rows, "the admin token should be stored (hashed)"
    cells = [str(cell) for row in rows for cell in row]
    secret = token.removeprefix("lapis_")
    assert not [c for c in cells if token in c or secret in c or (len(c) >= 8 and c in token)]
    assert all(len(c) <= 64 for c in cells)  # a digest, not an encoding of the token


def test_mlflow_runs_record_the_token_owner(lapis_server: Any) -> None:
    """Whatever user_id an mlflow client claims, the server records who really created the run."""
    with lapis_server.client() as c:
        exp = c.post("/api/2.0/mlflow/experiments/create", json={"name": "claims"}).json()
        r = c.post(
            "/api/2.0/mlflow/runs/create",
            json={"experiment_id": exp["experiment_id"], "user_id": "mallory"},
        )
        assert r.status_code == 200, r.text
        run_id = r.json()["run"]["info"]["run_id"]
        native = c.get(f"/api/v1/runs/{run_id}").json()
        assert native["created_by"] == "admin"
        assert native["run_id"] == run_id and native["experiment_id"] == exp["experiment_id"]


def test_ajax_api_aliases_answer(lapis_server: Any) -> None:
    with lapis_server.client() as c:
        for prefix in ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow"):
            name = f"alias{prefix.replace('/', '-')}"
            r = c.post(f"{prefix}/experiments/create", json={"name": name})
            assert r.status_code == 200, r.text
            eid = r.json()["experiment_id"]
            run = c.post(f"{prefix}/runs/create", json={"experiment_id": eid}).json()["run"]
            rid = run["info"]["run_id"]
            assert c.post(
                f"{prefix}/runs/log-metric",
                json={"run_id": rid, "key": "m", "value": 2.5, "timestamp": 1, "step": 3},
            ).is_success
            found = c.post(f"{prefix}/runs/search", json={"experiment_ids": [eid]}).json()
            assert [x["info"]["run_id"] for x in found["runs"]] == [rid]
            hist = c.get(
                f"{prefix}/metrics/get-history", params={"run_id": rid, "metric_key": "m"}
            ).json()["metrics"]
            assert [(m["step"], m["value"]) for m in hist] == [(3, 2.5)]
        for prefix in ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts"):
            rel = f"{eid}/{rid}/artifacts/{prefix.split('/')[1]}.txt"
            assert c.put(f"{prefix}/artifacts/{rel}", content=prefix.encode()).is_success
            assert c.get(f"{prefix}/artifacts/{rel}").content == prefix.encode()
            files = c.get(f"{prefix}/artifacts", params={"path": f"{eid}/{rid}/artifacts"}).json()[
                "files"
            ]
            assert f"{prefix.split('/')[1]}.txt" in {f["path"] for f in files}


def test_native_api_contract(lapis_server: Any) -> None:
    """/api/v1: create, log columnar, read back, search, page, end."""
    with lapis_server.client() as c:
        exp_name = "native-contract"
        ids = []
        for i in range(5):
            r = c.post(
                "/api/v1/runs",
                json={"experiment_name": exp_name, "run_name": f"n{i}", "tags": {"i": str(i)}},
            )
            assert r.status_code == 200, r.text
            run = r.json()
            assert run["status"] == "RUNNING" and run["tags"]["i"] == str(i)
            assert run["artifact_uri"] == (
                f"mlflow-artifacts:/{run['experiment_id']}/{run['run_id']}/artifacts"
            )
            ids.append(run["run_id"])
            n = 10 * (i + 1)
            r = c.post(
                f"/api/v1/runs/{run['run_id']}/log",
                json={
                    "metrics": {
                        "key": ["acc"] * n,
                        "value": [i / 10 + s / 1000 for s in range(n)],
                        "step": list(range(n)),
                        "timestamp": [1000 + s for s in range(n)],
                    },
                    "params": {"lr": str(i % 2)},
                },
            )
            assert r.json() == {"metrics": n}
        exp = c.get(f"/api/v1/experiments/{exp_name}").json()
        assert exp["name"] == exp_name and exp["lifecycle_stage"] == "active"
        assert c.get(f"/api/v1/experiments/{exp['experiment_id']}").json()["name"] == exp_name
        listed = c.get("/api/v1/experiments").json()["experiments"]
        assert exp_name in {e["name"] for e in listed}

        got = c.get(f"/api/v1/runs/{ids[2]}").json()
        assert got["params"] == {"lr": "0"}
        assert got["metrics"]["acc"] == {"value": 0.2 + 29 / 1000, "step": 29, "timestamp": 1029}
        hist = c.get(f"/api/v1/runs/{ids[2]}/metrics/acc/history").json()
        assert hist["key"] == "acc" and [p["step"] for p in hist["points"]] == list(range(30))

        ended = c.post(f"/api/v1/runs/{ids[4]}/end", json={"status": "FINISHED"}).json()
        assert ended["status"] == "FINISHED" and ended["end_time"] >= ended["start_time"]
        flt = "params.lr = '0' and metrics.acc > 0.1"
        r = c.get(
            "/api/v1/runs",
            params={"experiment": exp_name, "filter": flt, "order_by": "metrics.acc DESC"},
        ).json()
        assert [x["run_name"] for x in r["runs"]] == ["n4", "n2"]
        r = c.get(
            "/api/v1/runs",
            params={"experiment": exp_name, "filter": "attributes.status = 'FINISHED'"},
        ).json()
        assert [x["run_id"] for x in r["runs"]] == [ids[4]]
        seen, token = [], None
        while True:
            params: dict[str, Any] = {
                "experiment": exp["experiment_id"],
                "max_results": 2,
                "order_by": "attributes.run_name ASC",
            }
            if token:
                params["page_token"] = token
            page = c.get("/api/v1/runs", params=params).json()
            assert len(page["runs"]) <= 2
            seen += [x["run_name"] for x in page["runs"]]
            token = page["next_page_token"]
            if not token:
                break
        assert seen == [f"n{i}" for i in range(5)]


def test_concurrent_writers_all_succeed(lapis_server: Any) -> None:
    """Parallel clients creating, logging, searching and ending runs never see a 5xx or a lock."""
    with lapis_server.client() as c:
        exp = c.post("/api/2.0/mlflow/experiments/create", json={"name": "concurrent"}).json()
    eid = exp["experiment_id"]
    failures: list[str] = []

    def worker(w: int) -> None:
        with lapis_server.client() as cc:
            for j in range(10):
                r = cc.post(
                    "/api/2.0/mlflow/runs/create",
                    json={"experiment_id": eid, "run_name": f"w{w}-{j}"},
                )
                if r.status_code != 200:
                    failures.append(r.text)
                    continue
                rid = r.json()["run"]["info"]["run_id"]
                metrics = [{"key": "m", "value": i, "timestamp": 1, "step": i} for i in range(300)]
                for method, path, body in (
                    ("POST", "runs/log-batch", {"run_id": rid, "metrics": metrics}),
                    ("POST", "runs/search", {"experiment_ids": [eid], "max_results": 20}),
                    ("POST", "runs/update", {"run_id": rid, "status": "FINISHED"}),
                ):
                    r = cc.request(method, f"/api/2.0/mlflow/{path}", json=body)
                    if r.status_code != 200:
                        failures.append(f"{path}: {r.status_code} {r.text}")

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures[:5]
    with lapis_server.client() as c:
        runs = c.post(
            "/api/2.0/mlflow/runs/search",
            json={"experiment_ids": [eid], "max_results": 1000, "filter": "metrics.m = 299"},
        ).json()["runs"]
    assert len(runs) == 60 and {r["info"]["status"] for r in runs} == {"FINISHED"}


@pytest.mark.timeout(120)
def test_artifacts_stream_through_the_server(lapis_server: Any) -> None:
    """A 200 MiB upload and download move through the server without it holding the file."""
    import psutil

    server = psutil.Process(lapis_server.proc.pid)

    def rss() -> int:
        procs = [server, *server.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs)

    base, peak = rss(), [0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.02)

    chunk = os.urandom(1 << 20)
    with lapis_server.client() as c:  # uploads land only below a real run's artifact root
        run = c.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "0"}).json()["run"]
    root = run["info"]["artifact_uri"].split("mlflow-artifacts:/", 1)[1].lstrip("/")
    path = f"/api/2.0/mlflow-artifacts/artifacts/{root}/big.bin"
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with lapis_server.client() as c:
            up = c.put(path, content=(chunk for _ in range(200)))
            assert up.status_code == 200, up.text
            digest = hashlib.sha256()
            with c.stream("GET", path) as down:
                assert down.status_code == 200
                for block in down.iter_bytes():
                    digest.update(block)
            assert digest.hexdigest() == hashlib.sha256(chunk * 200).hexdigest()
            assert c.delete(path).status_code == 200
    finally:
        done.set()
        watcher.join()
    assert peak[0] - base < 64 * 2**20, f"server grew by {(peak[0] - base) / 2**20:.0f} MiB"
