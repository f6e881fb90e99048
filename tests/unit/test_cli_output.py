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
