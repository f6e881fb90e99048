"""The host's data cache keeps to its size: the least recently used copies go first, and
a copy a running job reads (its supervisor holds a shared lock) is never removed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lapis.compute import data_inputs


def _copy(root: Path, slot: str, name: str, size: int, age: float) -> Path:
    copy = root / slot / name
    (copy / "files").mkdir(parents=True)
    (copy / "files" / "data.bin").write_bytes(b"x" * size)
    then = time.time() - age
    os.utime(copy, (then, then))
    return copy


def test_prune_removes_the_least_recently_used_but_never_a_held_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "cache"
    oldest = _copy(root, "a", "v1", 64 * 1024, age=300)
    held = _copy(root, "b", "v1", 64 * 1024, age=200)
    newer = _copy(root, "a", "v2", 64 * 1024, age=100)
    newest = _copy(root, "c", "v1", 64 * 1024, age=10)
    monkeypatch.setenv("LAPIS_DATA_CACHE_GB", str(200 * 1024 / 1024**3))  # ~3 copies' room
    data_inputs._hold(held)  # a running job reads it
    try:
        assert held.stat().st_mtime > newest.stat().st_mtime - 1  # holding marks it used
        removed = data_inputs.prune(root)
        assert removed == [oldest]
        assert held.exists() and newer.exists() and newest.exists()
        # room for a new 128 KiB copy: the next least recently used not held goes too
        assert data_inputs.prune(root, need=128 * 1024) == [newer, newest]
        assert held.exists()
    finally:
        while data_inputs._HELD:
            os.close(data_inputs._HELD.pop())
    assert data_inputs.prune(root, need=256 * 1024) == [held]  # released: it may go


def test_a_cache_under_its_limit_is_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    copy = _copy(root, "a", "v1", 1024, age=10)
    assert data_inputs.prune(root) == [] and copy.exists()
    assert data_inputs.prune(tmp_path / "none") == []
