"""Azure CLI's output rules: ``--query`` (JMESPath) anywhere on the line, tsv and yaml."""

from __future__ import annotations

import pytest

from lapis.cli._common import run_query, tsv_lines
from lapis.cli.main import take_query
from lapis.errors import InvalidParameterValue


def test_tsv_follows_azure_cli() -> None:
    assert tsv_lines("http://h/score") == ["http://h/score"]
    assert tsv_lines(["a", "b"]) == ["a", "b"]  # one line per list item
    assert tsv_lines({"name": "ep", "ok": True, "n": None, "tags": {"a": 1}, "ids": [1, 2]}) == [
        "ep\tTrue\t\t\t2"  # objects empty, lists their length, null empty
    ]
    assert tsv_lines([{"name": "a", "state": "Running"}, {"name": "b", "state": "Stopped"}]) == [
        "a\tRunning",
        "b\tStopped",
    ]
    assert tsv_lines([["a", 1], ["b", 2]]) == ["a\t1", "b\t2"]


def test_query_is_taken_from_anywhere_on_the_line() -> None:
    assert take_query(["online-endpoint", "show", "-n", "ep", "--query", "scoring_uri"]) == (
        ["online-endpoint", "show", "-n", "ep"],
        "scoring_uri",
    )
    assert take_query(["job", "list", "--query=[].name", "-o", "tsv"]) == (
        ["job", "list", "-o", "tsv"],
        "[].name",
    )
    assert take_query(["job", "create", "--", "--query", "x"]) == (
        ["job", "create", "--", "--query", "x"],
        None,
    )
    data = {"traffic": {"blue": 90}, "deployments": [{"name": "blue"}, {"name": "green"}]}
    assert run_query("traffic.blue", data) == 90
    assert run_query("deployments[].name", data) == ["blue", "green"]
    with pytest.raises(InvalidParameterValue, match=r"--query 'deployments\[': "):
        run_query("deployments[", data)


def test_shell_completion_knows_the_nouns_and_verbs() -> None:
    import os
    import subprocess
    import sys

    def complete(words: str, index: int) -> list[str]:
        env = {
            **os.environ,
            "_LAPIS_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(index),
        }
        done = subprocess.run(
            [sys.executable, "-m", "lapis"], env=env, capture_output=True, text=True, timeout=60
        )
        return done.stdout.split()

    assert complete("lapis online-en", 1) == ["online-endpoint"]
    assert "show" in complete("lapis online-endpoint sh", 2)
    script = subprocess.run(
        [sys.executable, "-m", "lapis", "--show-completion", "bash"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "_lapis_completion" in script.stdout


def test_tables_keep_the_name_column_whole_at_80_columns() -> None:
    """The name is what users copy into the next command: other columns give way."""
    import io

    from rich.table import Table

    from lapis.cli._common import _Console

    name = "a-rather-long-job-name-that-users-copy-1234567890"
    table = Table("name", "status", "compute", "experiment", "created", "duration", "note")
    table.add_row(name, "Completed", "local", "an-experiment-name", "2026-12-06 12:00:00",
                  "1m 02s", "a long note about what happened to this job " * 2)  # fmt: skip
    out = io.StringIO()
    _Console(file=out, width=80, soft_wrap=False).print(table)
    lines = out.getvalue().splitlines()
    assert any(name in line for line in lines), out.getvalue()
    assert all(len(line) <= 80 for line in lines)
