"""`lapis server` set-up mistakes end in one readable line and a non-zero exit."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest


def _serve(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "lapis", "server", "--home", str(tmp_path / "h"), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--port", "0", "--database-url", "notaurl"], "is not a database URL"),
        (
            ["--port", "0", "--database-url", "postgresql+psycopg://nobody:secret@127.0.0.1:1/x"],
            "cannot open the metadata store postgresql+psycopg://nobody:***@127.0.0.1:1/x",
        ),
        # without s3fs: the package to install; with it (the dev install): no credentials
        (["--port", "0", "--artifact-root", "s3://bucket/x"], "s3://bucket/x"),
    ],
)
def test_bad_store_settings(tmp_path: Path, args: list[str], fragment: str) -> None:
    done = _serve(tmp_path, *args)
    assert done.returncode == 1
    assert fragment in done.stderr, done.stderr
    assert "unexpected" not in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "secret" not in done.stderr


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        done = _serve(tmp_path, "--port", str(busy.getsockname()[1]))
    assert done.returncode == 2
    assert "Address already in use" in done.stderr and "Traceback" not in done.stderr
