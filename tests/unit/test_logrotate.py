"""Size-based rotation of a log that another process keeps appending to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lapis.logrotate import rotate_if_large


def test_rotates_a_log_held_open_by_a_writer(tmp_path: Path) -> None:
    log = tmp_path / "instance-0.log"
    # a child process holding the file as its stdout, like a scoring instance
    with open(log, "ab", buffering=0) as fh:
        writer = subprocess.Popen(
            [sys.executable, "-c", "import sys\nfor line in sys.stdin: print(line, end='')"],
            stdin=subprocess.PIPE,
            stdout=fh,
            text=True,
        )
    assert writer.stdin is not None
    line = "x" * 99 + "\n"
    for _ in range(30):  # 3,000 bytes
        writer.stdin.write(line)
    writer.stdin.flush()
    while log.stat().st_size < 3000:
        pass
    assert not rotate_if_large(log, max_bytes=5000)
    assert rotate_if_large(log, max_bytes=1000)
    assert log.stat().st_size == 0
    assert (tmp_path / "instance-0.log.1").stat().st_size == 3000
    writer.stdin.write("after\n")
    writer.stdin.close()
    writer.wait()
    assert log.read_text() == "after\n"  # appended at the new end, no hole before it
    for n in range(5):
        log.write_text(f"round {n}\n" * 200)
        assert rotate_if_large(log, max_bytes=100, keep=3)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["instance-0.log", "instance-0.log.1", "instance-0.log.2", "instance-0.log.3"]
    assert (tmp_path / "instance-0.log.1").read_text().startswith("round 4")
    assert (tmp_path / "instance-0.log.3").read_text().startswith("round 2")
    assert not rotate_if_large(tmp_path / "missing.log")
    assert os.path.getsize(log) == 0
