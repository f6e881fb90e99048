"""Code snapshots: ignore files, Azure's limits, content hashing, git state."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lapis.artifacts.snapshot import take_snapshot
from lapis.errors import InvalidParameterValue


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_amlignore_wins_over_gitignore(tmp_path: Path) -> None:
    root = _tree(
        tmp_path / "src",
        {
            "train.py": "print(1)",
            "data/big.csv": "x",
            "notes.tmp": "t",
            "keep.tmp": "k",
            ".amlignore": "data/\n*.tmp\n!keep.tmp\n",
            ".gitignore": "train.py\n",
            "__pycache__/a.pyc": "c",
            "sub/data/inner.txt": "i",
        },
    )
    snap = take_snapshot(root)
    assert snap.ignore_file == ".amlignore"
    assert (
        snap.files == (".amlignore", ".gitignore", "keep.tmp", "sub/data/inner.txt", "train.py")
        or "sub/data/inner.txt" not in snap.files
    )
    assert "data/big.csv" not in snap.files and "notes.tmp" not in snap.files
    assert "__pycache__/a.pyc" not in snap.files


def test_digest_follows_content_not_time(tmp_path: Path) -> None:
    a = _tree(tmp_path / "a", {"train.py": "print(1)", "lib/u.py": "x = 1"})
    b = _tree(tmp_path / "b", {"lib/u.py": "x = 1", "train.py": "print(1)"})
    assert take_snapshot(a).digest == take_snapshot(b).digest
    (b / "lib/u.py").write_text("x = 2")
    assert take_snapshot(a).digest != take_snapshot(b).digest


def test_limits_name_the_problem(tmp_path: Path) -> None:
    root = _tree(tmp_path / "src", {f"f{i}.txt": "x" for i in range(6)})
    with pytest.raises(InvalidParameterValue, match="more than 5 files"):
        take_snapshot(root, max_files=5)
    (root / "huge.bin").write_bytes(b"\0" * 3 * 2**20)
    with pytest.raises(InvalidParameterValue, match=r"huge\.bin \(3\.0 MB\)"):
        take_snapshot(root, max_bytes=2**20)
    with pytest.raises(InvalidParameterValue, match="does not exist"):
        take_snapshot(tmp_path / "missing")


def test_git_commit_and_dirty_flag(tmp_path: Path) -> None:
    root = _tree(tmp_path / "repo", {"train.py": "print(1)"})
    git = ["git", "-C", str(root), "-c", "user.email=t@e", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    clean = take_snapshot(root)
    assert clean.git_commit and len(clean.git_commit) == 40 and clean.git_dirty is False
    (root / "train.py").write_text("print(2)")
    assert take_snapshot(root).git_dirty is True
    assert take_snapshot(_tree(tmp_path / "plain", {"a.py": ""})).git_commit is None
