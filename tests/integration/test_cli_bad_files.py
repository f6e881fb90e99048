"""Every `-f FILE` command meets bad files with one readable line, a non-zero exit, and no hang.

The files are the ones that used to end in a traceback or a minute-long hang: a
FIFO or a device where a YAML file should be, a file too big, bytes that are not
UTF-8, an alias bomb, nesting a thousand deep, a folder, nothing at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

COMMANDS = [
    ["job", "create", "-f"],
    ["compute", "create", "-f"],
    ["model", "create", "-f"],
    ["environment", "create", "-f"],
    ["online-endpoint", "create", "-f"],
    ["online-deployment", "create", "-f"],
    ["batch-endpoint", "create", "-f"],
    ["batch-deployment", "create", "-f"],
    ["role", "create", "-f"],
]


def _bad_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    fifo = folder / "fifo.yml"
    os.mkfifo(fifo)
    files["fifo"] = fifo
    files["device"] = Path("/dev/zero")
    link = folder / "zero.yml"
    link.symlink_to("/dev/zero")
    files["link to a device"] = link
    big = folder / "big.yml"
    with open(big, "wb") as fh:
        fh.truncate(20 * 1024 * 1024)  # sparse: 20 MB of NULs
    files["huge"] = big
    latin = folder / "latin1.yml"
    latin.write_bytes("name: caf\xe9\ncommand: echo\n".encode("latin-1"))
    files["not UTF-8"] = latin
    binary = folder / "binary.yml"
    binary.write_bytes(bytes(range(256)) * 4)
    files["binary"] = binary
    bomb = folder / "bomb.yml"
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    bomb.write_text("\n".join(lines) + "\ncommand: echo\nname: bomb\n")
    files["alias bomb"] = bomb
    deep = folder / "deep.yml"
    deep.write_text("name: " + "[" * 5000 + "]" * 5000 + "\n")
    files["deep"] = deep
    files["folder"] = folder
    files["missing"] = folder / "nope.yml"
    tabs = folder / "tabs.yml"
    tabs.write_text("name: x\n\tcommand: echo\n")
    files["malformed"] = tabs
    nul = folder / "nul.yml"
    nul.write_bytes(b"name: a\x00b\ncommand: echo\n")
    files["NUL"] = nul
    return files


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _bad_files(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_bad_files_get_one_line_and_exit_1(
    lapis_server: Any, bad: dict[str, Path], command: list[str]
) -> None:
    env = {**os.environ, **lapis_server.env}
    for label, path in bad.items():
        try:
            done = subprocess.run(
                [sys.executable, "-m", "lapis", *command, str(path)],
                capture_output=True,
                text=True,
                env=env,
                timeout=30,  # a hang detector, not a timing assertion
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"lapis {' '.join(command)} hung on a {label} file")
        where = f"{' '.join(command)} <{label}>"
        assert done.returncode in (1, 2), (where, done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, (where, done.stderr)
        text = done.stderr.strip()
        assert text and len(text.splitlines()) <= 3, (where, text)
        assert "unexpected" not in text, (where, text)
