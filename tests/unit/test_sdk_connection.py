"""Finding the server and token, turning error bodies into exceptions, a light ``import lapis``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from lapis.errors import LapisError, ResourceDoesNotExist, Unauthenticated
from lapis.sdk.connection import LapisHTTP, ServerNotFound, read_token, resolve, status_of


def write_home(home: Path, url: str = "http://127.0.0.1:9", token: str = "lapis_tok") -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "server.json").write_text(json.dumps({"url": url, "pid": 1}))
    (home / "credentials.json").write_text(json.dumps({"url": url, "token": token}))
    return home


def test_env_url_and_token_win(tmp_path: Path) -> None:
    write_home(tmp_path)
    env = {"LAPIS_URL": "http://remote:8765/", "LAPIS_TOKEN": "t1", "LAPIS_HOME": str(tmp_path)}
    conn = resolve(env=env)
    assert (conn.url, conn.token, conn.source) == ("http://remote:8765", "t1", "LAPIS_URL")


def test_home_files_are_used_without_env(tmp_path: Path) -> None:
    write_home(tmp_path, url="http://127.0.0.1:4000")
    conn = resolve(env={"LAPIS_HOME": str(tmp_path)})
    assert (conn.url, conn.token) == ("http://127.0.0.1:4000", "lapis_tok")
    assert conn.source.endswith("server.json")
    assert resolve(home=tmp_path, env={}).url == "http://127.0.0.1:4000"


def test_url_without_token_falls_back_to_local_credentials(tmp_path: Path) -> None:
    write_home(tmp_path)
    conn = resolve(env={"LAPIS_URL": "http://x:1", "LAPIS_HOME": str(tmp_path)})
    assert (conn.url, conn.token) == ("http://x:1", "lapis_tok")


def test_explicit_home_beats_lapis_url(tmp_path: Path) -> None:
    write_home(tmp_path, url="http://127.0.0.1:4001")
    env = {"LAPIS_URL": "http://remote:1", "LAPIS_TOKEN": "t"}
    assert resolve(home=tmp_path, env=env, prefer_home=True).url == "http://127.0.0.1:4001"


def test_no_server_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(ServerNotFound, match="lapis server") as info:
        resolve(env={"LAPIS_HOME": str(tmp_path / "empty")})
    assert isinstance(info.value, LapisError)
    with pytest.raises(ServerNotFound, match="lapis server --home"):
        read_token(tmp_path / "empty")
    write_home(tmp_path)
    assert read_token(tmp_path) == "lapis_tok"


def client_answering(response: httpx.Response | Exception) -> LapisHTTP:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(response, Exception):
            raise response
        return response

    return LapisHTTP("http://lapis.test", "tok", transport=httpx.MockTransport(handler))


def test_error_json_becomes_the_same_error_class() -> None:
    body = {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run 'x' not found"}
    http = client_answering(httpx.Response(404, json=body))
    with pytest.raises(ResourceDoesNotExist, match="Run 'x' not found") as info:
        http.get("/api/v1/runs/x")
    assert status_of(info.value) == 404


def test_401_without_json_is_unauthenticated() -> None:
    http = client_answering(httpx.Response(401, text="nope"))
    with pytest.raises(Unauthenticated):
        http.get("/api/v1/whoami")


def test_plain_text_5xx_keeps_its_status() -> None:
    http = client_answering(httpx.Response(502, text="Bad Gateway\nmore"))
    with pytest.raises(LapisError, match="HTTP 502") as info:
        http.post("/api/v1/runs", {})
    assert status_of(info.value) == 502


def test_connection_refused_is_server_not_found() -> None:
    http = client_answering(httpx.ConnectError("refused"))
    with pytest.raises(
        ServerNotFound, match=r"cannot reach the Lapis server at http://lapis\.test"
    ):
        http.get("/healthz")


def test_import_lapis_stays_light() -> None:
    """Neither ``import lapis`` nor the logging API pulls in server-side or mlflow modules."""
    code = (
        "import sys, lapis\n"
        "heavy = ('fastapi', 'starlette', 'sqlalchemy', 'alembic', 'mlflow', 'uvicorn')\n"
        "assert 'httpx' not in sys.modules, 'import lapis loaded httpx'\n"
        "lapis.log_metric, lapis.start_run\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "assert not loaded, loaded\n"
        "assert 'lapis.server' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
