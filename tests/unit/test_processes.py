"""The process helpers shared by job supervisors, deployment instances and notebook servers."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time
from pathlib import Path

from lapis.util.processes import (
    backoff,
    end_leftover,
    http_probe,
    read_port_file,
    same_process,
    start_time_ms,
    tied_to_this_process,
)


def test_backoff_doubles_up_to_thirty_seconds() -> None:
    assert [backoff(n) for n in range(1, 8)] == [0.0, 1.0, 3.0, 7.0, 15.0, 30.0, 30.0]


def test_port_file_is_read_once_written(tmp_path: Path) -> None:
    path = tmp_path / "p.port"
    assert read_port_file(path) is None
    path.write_text("half")
    assert read_port_file(path) is None
    path.write_text("43123\n")
    assert read_port_file(path) == 43123


def test_http_probe_reads_status_and_json_and_says_0_when_nobody_answers() -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"status": "ok"}' if self.path == "/ready" else b"not json"
            self.send_response(200 if self.path == "/ready" else 503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert http_probe(port, "/ready", 5) == (200, {"status": "ok"})
        assert http_probe(port, "/health", 5) == (503, {})
    finally:
        server.shutdown()
        server.server_close()
    assert http_probe(port, "/ready", 1)[0] == 0


def test_a_tied_child_runs_and_a_recorded_leftover_is_ended_only_if_it_is_ours(
    tmp_path: Path,
) -> None:
    marker = "--lapis-test-marker"
    argv = tied_to_this_process([sys.executable, "-c", "import time; time.sleep(60)", marker])
    proc = subprocess.Popen(argv, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        # until the launcher has exec'd the child: mid-exec its command line reads empty
        while "-S" in _cmdline(proc.pid) or not _cmdline(proc.pid):
            assert time.monotonic() < deadline, "the tied child never started"
            time.sleep(0.05)
        started = start_time_ms(proc.pid)
        assert started is not None and same_process(proc.pid, started)
        assert not end_leftover(proc.pid, started + 60_000, marker)  # another start time
        assert not end_leftover(proc.pid, started, "--some-other-marker")  # not ours
        assert proc.poll() is None
        assert end_leftover(proc.pid, started, marker)
        assert proc.wait(timeout=10) is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _cmdline(pid: int) -> list[str]:
    import psutil

    try:
        return list(psutil.Process(pid).cmdline())
    except psutil.Error:
        return []
