"""Fixtures shared by the compatibility tests."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A static HTTP server over ``tmp_path/site`` (holding iris.csv); records each request."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "iris.csv").write_text("sepal,petal\n1,2\n3,4\n5,6\n")
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, fmt: str, *args: Any) -> None:
            seen.append(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}")

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
