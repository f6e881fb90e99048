"""YAML from users is parsed under budgets: alias bombs, self-reference, depth, size, files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lapis.errors import InvalidParameterValue
from lapis.specs.yaml_lines import (
    MAX_EXPANDED_NODES,
    load,
    read_text_file,
    safe_load,
)


def _bomb(levels: int) -> str:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_alias_bombs_are_refused_before_expansion() -> None:
    for parse in (load, safe_load):
        with pytest.raises(InvalidParameterValue) as err:
            parse(_bomb(9), "bomb.yml")
        assert "alias" in err.value.message and "bomb.yml:" in err.value.message


def test_sharing_within_the_budget_is_fine() -> None:
    doc = safe_load(_bomb(3), "ok.yml")  # 9 * 9 * 9 values: well inside
    assert len(doc["a2"]) == 9 and MAX_EXPANDED_NODES > 1000


def test_self_reference_and_depth_are_refused() -> None:
    with pytest.raises(InvalidParameterValue, match="contains it"):
        safe_load("a: &a [1, *a]\n")
    with pytest.raises(InvalidParameterValue, match="levels"):
        safe_load("x: " + "[" * 300 + "]" * 300 + "\n")


def test_documents_are_read_as_regular_utf8_files(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yml"
    os.mkfifo(fifo)
    with pytest.raises(InvalidParameterValue, match="not a regular file"):
        read_text_file(fifo, "job file")  # returns at once instead of blocking
    with pytest.raises(InvalidParameterValue, match="not a regular file"):
        read_text_file("/dev/zero", "job file")
    latin = tmp_path / "latin.yml"
    latin.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(InvalidParameterValue, match=r"latin.yml:2: job file is not UTF-8"):
        read_text_file(latin, "job file")
    with pytest.raises(InvalidParameterValue, match="folder"):
        read_text_file(tmp_path, "job file")
    with pytest.raises(InvalidParameterValue, match="No such file"):
        read_text_file(tmp_path / "missing.yml", "job file")
