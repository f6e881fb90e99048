"""The server's own contract: files it writes, how it stores tokens, the routes it serves."""

from __future__ import annotations

import json
import sqlite3
import stat
from typing import Any

import httpx


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
