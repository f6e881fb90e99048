"""Storage services on loopback for the data tests: Azurite (Azure Storage's emulator,
from npm through package.json) and moto's S3 server (a PyPI package in the dev extra).
Each is a real server process on a free port, stopped after the module."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
AZURITE = ROOT / "node_modules" / ".bin" / "azurite-blob"
# Azurite's one account and its key, published by Microsoft for the emulator
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the storage server exited: {log.read_text()[-800:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the storage server did not listen on {port}: {log.read_text()[-800:]}")


@contextlib.contextmanager
def _serving(argv: list[str], port: int, log: Path) -> Iterator[None]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=log.parent)  # fmt: skip
    try:
        _until_listening(port, proc, log)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module", name="azurite")
def azurite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Azurite's blob service; its account URL (``http://127.0.0.1:<port>/devstoreaccount1``)."""
    if not AZURITE.exists() or shutil.which("node") is None:
        pytest.skip("NOT TESTED: Azurite is missing: `make studio-assets` (npm ci) installs it")
    port = _free_port()
    folder = tmp_path_factory.mktemp("azurite")
    argv = [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port),
            "--inMemoryPersistence", "--skipApiVersionCheck"]  # fmt: skip
    with _serving(argv, port, folder / "azurite.log"):
        yield f"http://127.0.0.1:{port}/{ACCOUNT}"


@pytest.fixture(scope="module", name="moto_s3")
def moto_s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server; its endpoint URL."""
    server = Path(sys.executable).parent / "moto_server"
    if not server.exists():
        pytest.skip("NOT TESTED: moto's server is missing: pip install 'moto[server]' (dev extra)")
    port = _free_port()
    folder = tmp_path_factory.mktemp("moto")
    with _serving([str(server), "-H", "127.0.0.1", "-p", str(port)], port, folder / "moto.log"):
        yield f"http://127.0.0.1:{port}"
