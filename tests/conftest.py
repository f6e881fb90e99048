"""Shared fixtures: real ``lapis server`` processes on free loopback ports.

Every server gets its own temporary home (never ``~/.lapis``) and, when
``LAPIS_TEST_DATABASE_URL`` is set, a fresh PostgreSQL database of its own so
tests can run in parallel. Servers run in their own process group and are
killed at teardown: nothing is left running.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

PG_URL = os.environ.get("LAPIS_TEST_DATABASE_URL")
# A JupyterLab per compute instance costs seconds of CPU each, and most tests that make an
# instance only queue jobs on it: servers run without them unless the module is marked
# ``jupyterlab`` (the workstation tests), which turns them on for its servers.
os.environ.setdefault("LAPIS_JUPYTERLAB", "off")
PG_SKIP = "LAPIS_TEST_DATABASE_URL not set: PostgreSQL store tests skipped"


@dataclass
class ServerProcess:
    """One workspace server; ``start``/``stop``/``kill9`` keep the same home and database."""

    home: Path
    database_url: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    token: str = ""
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    start_args: list[str] = field(default_factory=list)  # extra `lapis server` options
    verify: str | bool = True  # a CA file for an HTTPS server with a self-signed certificate
    python: str = sys.executable  # another environment's interpreter (an installed wheel)
    cwd: Path | None = None  # where it starts (outside the checkout, to import the wheel)
    extra_env: dict[str, str] = field(default_factory=dict)  # the server process's own

    def start(self, timeout: float = 60.0) -> ServerProcess:
        info = self.home / "server.json"
        info.unlink(missing_ok=True)
        cmd = [self.python, "-m", "lapis", "server", "--home", str(self.home)]
        cmd += ["--port", str(self.port)]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        cmd += self.start_args
        log_path = self.home.parent / f"{self.home.name}-server.log"
        with open(log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.cwd,
                env={**os.environ, **self.extra_env} if self.extra_env else None,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lapis server exited with {self.proc.returncode}: {log_path}")
            if info.exists():
                try:
                    self.url = json.loads(info.read_text())["url"]
                    ok = httpx.get(f"{self.url}/healthz", timeout=2, verify=self._verify())
                    if ok.status_code == 200:
                        break
                except (OSError, ValueError, KeyError, httpx.HTTPError):
                    pass
            time.sleep(0.1)
        else:
            self.kill9()
            raise RuntimeError(f"lapis server did not start within {timeout} s")
        self.token = json.loads((self.home / "credentials.json").read_text())["token"]
        self.env = {
            "LAPIS_HOME": str(self.home),
            "LAPIS_URL": self.url,
            "LAPIS_TOKEN": self.token,
            "MLFLOW_TRACKING_URI": self.url,
            "MLFLOW_TRACKING_TOKEN": self.token,
        }
        return self

    def stop(self) -> None:
        """SIGTERM, as Ctrl+C or a service manager would; SIGKILL if it does not go."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=15)
        self.kill9()

    def kill9(self) -> None:
        """SIGKILL the whole process group, even when its leader has already exited."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=15)

    def _verify(self) -> Any:
        import ssl

        return (
            ssl.create_default_context(cafile=self.verify) if isinstance(self.verify, str) else True
        )

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
            verify=self._verify(),
        )


def _pg_database() -> tuple[str, str]:
    import psycopg

    assert PG_URL is not None
    name = f"lapis_t_{uuid.uuid4().hex[:12]}"
    admin = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, PG_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg(name: str) -> None:
    import psycopg

    assert PG_URL is not None
    admin = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _server(kind: str, base: Path, request: pytest.FixtureRequest | None = None
            ) -> Iterator[ServerProcess]:  # fmt: skip
    pg_name = None
    db_url = None
    if kind == "postgres":
        if not PG_URL:
            pytest.skip(PG_SKIP)
        pg_name, db_url = _pg_database()
    server = ServerProcess(home=base / "home", database_url=db_url)
    if request is not None and request.node.get_closest_marker("jupyterlab"):
        server.extra_env["LAPIS_JUPYTERLAB"] = "on"
    try:
        yield server.start()
    finally:
        server.stop()  # SIGTERM first: a clean shutdown, and its coverage data is written
        if pg_name:
            _drop_pg(pg_name)


_STORE_FIXTURES = {
    "lapis_server": "module",
    "inprocess_server": "module",
    "fresh_server": "function",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each server fixture runs on SQLite, the default a user gets; tests whose subject is
    what the metadata store keeps (tracking, the registry, jobs' queue, durability, access,
    bad values) are marked ``stores("sqlite", "postgres")`` and run on both. The studio,
    endpoints, environments and compute paths go through the same services and run once:
    running all of them twice doubled the suite for no extra store coverage."""
    mark = metafunc.definition.get_closest_marker("stores")
    stores = list(mark.args) if mark else ["sqlite"]
    for name, scope in _STORE_FIXTURES.items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, stores, indirect=True, scope=scope)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def lapis_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server shared by the tests of one module, on the store the test is marked for."""
    yield from _server(request.param, tmp_path_factory.mktemp(f"srv-{request.param}"), request)


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server on SQLite whatever the test is marked for: for helpers that need that store."""
    yield from _server("sqlite", tmp_path_factory.mktemp("srv-sqlite"))


@pytest.fixture
def fresh_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of one's own, for tests that stop, kill or restart it."""
    yield from _server(request.param, tmp_path, request)


def _point_mlflow(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """Aim the in-process mlflow client at ``server`` (again after a restart moved its port)."""
    import mlflow

    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    # A 500 should fail the test at once, not after mlflow's minutes of retries.
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", server.url)  # so set_registry_uri's copy is undone
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
    mlflow.set_tracking_uri(server.url)
    mlflow.set_registry_uri(server.url)


def _reset_mlflow() -> None:
    """Forget the active run, experiment and URIs: mlflow keeps them in globals and os.environ."""
    import mlflow
    import mlflow.tracking.fluent as fluent

    while mlflow.active_run() is not None:
        mlflow.end_run()
    fluent._active_experiment_id = None
    for leaked in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_REGISTRY_URI"):
        os.environ.pop(leaked, None)
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    mlflow.set_registry_uri(None)  # type: ignore[arg-type]


@pytest.fixture
def mlflow_env(
    lapis_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServerProcess]:
    """Point the in-process mlflow client at the shared server (undone after the test)."""
    _point_mlflow(lapis_server, monkeypatch)
    yield lapis_server
    _reset_mlflow()


@pytest.fixture
def point_mlflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[ServerProcess], None]]:
    """For tests with a server of their own: call it after every (re)start of that server."""
    yield lambda server: _point_mlflow(server, monkeypatch)
    _reset_mlflow()


@pytest.fixture
def server_type() -> type[ServerProcess]:
    """The ServerProcess class, for tests that start a server with options of their own."""
    return ServerProcess


@dataclass
class InProcessServer:
    """The whole app in this process: uvicorn in a thread, lifespan on, as ``lapis server``
    runs it — so the scheduler, job service, backends, proxy and auth run where a test (and
    coverage) can see them. Jobs still run as real supervisor processes calling back over HTTP.
    """

    home: Path
    database_url: str | None = None
    url: str = ""
    token: str = ""
    env: dict[str, str] = field(default_factory=dict)
    ws: Any = None
    _server: Any = None
    _thread: Any = None

    def start(self, timeout: float = 60.0) -> InProcessServer:
        import socket
        import threading

        import uvicorn

        from lapis.config import Settings
        from lapis.server.app import Background, create_app
        from lapis.server.context import Workspace

        self.ws = Workspace.open(Settings(home=self.home, database_url=self.database_url))
        assert self.ws.bootstrap is not None
        self.token = self.ws.bootstrap.token
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        app = create_app(self.ws, Background(self.url))
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the in-process server did not start")
            time.sleep(0.02)
        self.env = {
            "LAPIS_HOME": str(self.home),
            "LAPIS_URL": self.url,
            "LAPIS_TOKEN": self.token,
            "MLFLOW_TRACKING_URI": self.url,
            "MLFLOW_TRACKING_TOKEN": self.token,
        }
        return self

    def stop(self) -> None:
        """Shut down as SIGTERM would: the lifespan ends the scheduler and instances."""
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
            self._server = None
        if self.ws is not None:
            self.ws.close()

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=60
        )


@pytest.fixture(scope="module")
def inprocess_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessServer]:
    """The whole server inside the test process, once per metadata store."""
    pg_name = db_url = None
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip(PG_SKIP)
        pg_name, db_url = _pg_database()
    base = tmp_path_factory.mktemp(f"inproc-{request.param}")
    server = InProcessServer(home=base / "home", database_url=db_url)
    try:
        yield server.start()
    finally:
        server.stop()
        if pg_name:
            _drop_pg(pg_name)
