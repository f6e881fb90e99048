"""The search grammar, page tokens and LIKE pattern translation: pure functions, no database."""

from __future__ import annotations

import base64
import json

import pytest

from lapis.errors import InvalidParameterValue
from lapis.tracking.search.grammar import Clause, OrderBy, parse_filter, parse_order_by
from lapis.tracking.search.paging import decode_page_token, encode_page_token
from lapis.tracking.search.sql import glob_pattern, like_pattern


def parsed(text: str) -> list[tuple[object, ...]]:
    return [(c.entity, c.key, c.op, c.value) for c in parse_filter(text)]


@pytest.mark.parametrize("text", [None, "", "   "])
def test_empty_filter_has_no_clauses(text: str | None) -> None:
    assert parse_filter(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.acc > 0.9", [("metrics", "acc", ">", 0.9)]),
        ("metric.acc>=1", [("metrics", "acc", ">=", 1)]),
        ("metrics.loss < -1.5e3", [("metrics", "loss", "<", -1500.0)]),
        ("metrics.a <= .5", [("metrics", "a", "<=", 0.5)]),
        ("params.lr = '0.1'", [("params", "lr", "=", "0.1")]),
        ('param.lr != "0.1"', [("params", "lr", "!=", "0.1")]),
        ("parameters.x LIKE 'a%'", [("params", "x", "LIKE", "a%")]),
        ("tags.team ILIKE '%vision%'", [("tags", "team", "ILIKE", "%vision%")]),
        ("tag.mlflow.runName = 'x'", [("tags", "mlflow.runName", "=", "x")]),
        ("metrics.`my metric` > 1", [("metrics", "my metric", ">", 1)]),
        ("tags.\"a.b\" = 'x'", [("tags", "a.b", "=", "x")]),
        ("tags.`a``b` = 'x'", [("tags", "a`b", "=", "x")]),
        ("metrics.loss/train < 1", [("metrics", "loss/train", "<", 1)]),
        ("status = 'RUNNING'", [("attributes", "status", "=", "RUNNING")]),
        ("attributes.run_name = 'r'", [("attributes", "run_name", "=", "r")]),
        ("attribute.start_time > 5", [("attributes", "start_time", ">", 5)]),
        ("run.user_id = 'ana'", [("attributes", "user_id", "=", "ana")]),
        ("`Run name` = 'x'", [("attributes", "Run name", "=", "x")]),
        ("run_id IN ('a', \"b\",)", [("attributes", "run_id", "IN", ["a", "b"])]),
        ("run_id not in ('a')", [("attributes", "run_id", "NOT IN", ["a"])]),
        ("dataset.name = 'mnist'", [("datasets", "name", "=", "mnist")]),
        ("datasets.digest IN ('d1')", [("datasets", "digest", "IN", ["d1"])]),
        ("dataset.context LIKE 'tr%'", [("datasets", "context", "LIKE", "tr%")]),
        ("tags.x IS NULL", [("tags", "x", "IS NULL", None)]),
        ("params.x is not null", [("params", "x", "IS NOT NULL", None)]),
        ("params.q = 'it''s'", [("params", "q", "=", "it's")]),
        ("params.q = 'a\\%'", [("params", "q", "=", "a\\%")]),
        (
            "metrics.a > 1 and params.b = 'x' AnD tags.c != 'y'",
            [("metrics", "a", ">", 1), ("params", "b", "=", "x"), ("tags", "c", "!=", "y")],
        ),
    ],
)
def test_parses_mlflow_filters(text: str, expected: list[tuple[object, ...]]) -> None:
    assert parsed(text) == expected


def test_clauses_remember_where_they_start() -> None:
    first, second = parse_filter("metrics.a > 1 AND params.b = 'x'")
    assert first == Clause("metrics", "a", ">", 1, 0, 12)
    assert (second.position, second.value_position) == (18, 29)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics.acc >> 1", "unexpected token '>' at position 13"),
        ("metrics.a == 1", "unexpected token '=' at position 11"),
        ("metrics.a ! 1", "unexpected token '!' at position 10"),
        ("metrics.a > 1 OR metrics.b < 2", "unexpected token 'OR' at position 14 (MLflow's"),
        ("metrics.a > 1 metrics.b < 2", "unexpected token 'metrics' at position 14"),
        ("metrics.a > 1 AND", "unexpected end of text at position 17"),
        ("metrics.a", "unexpected end of text at position 9 (expected a comparator"),
        ("metrics.a foo 1", "unexpected token 'foo' at position 10"),
        ("(metrics.a > 1)", "unexpected token '(' at position 0"),
        ("NOT metrics.a > 1", "unexpected token 'NOT' at position 0"),
        ("AND metrics.a > 1", "unexpected token 'AND' at position 0"),
        ("bogus.key = 'x'", "unknown entity 'bogus' at position 0"),
        ("metrics. > 1", "unexpected token '>' at position 9"),
        ("metrics.a > 1a", "unexpected token '1a' at position 12"),
        ("metrics.a > x", "unexpected token 'x' at position 12"),
        ("params.a = 'open", "unterminated quote ' at position 11"),
        ('tags."open = 1', 'unterminated quote " at position 5'),
        ("run_id IN ()", "unexpected token ')' at position 11"),
        ("run_id IN 'a'", "unexpected token ''' at position 10 (IN needs a list"),
        ("run_id IN ('a' 'b')", "unexpected token ''' at position 15"),
        ("run_id IN ('a', 1)", "unexpected token '1' at position 16"),
        ("params.a NOT 'x'", "unexpected token ''' at position 13 (expected IN after NOT)"),
        ("params.a IS 'x'", "(expected IS NULL or IS NOT NULL)"),
        ("metrics.a > 1; DROP TABLE runs", "unexpected token ';' at position 13"),
    ],
)
def test_errors_name_the_token_and_position(text: str, message: str) -> None:
    with pytest.raises(InvalidParameterValue) as err:
        parse_filter(text)
    assert err.value.message.startswith(f"Invalid filter '{text}': ")
    assert message in err.value.message
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.acc DESC", OrderBy("metrics", "acc", False)),
        ("metrics.acc", OrderBy("metrics", "acc", True)),
        ("params.lr asc", OrderBy("params", "lr", True)),
        ("tags.`a b` desc", OrderBy("tags", "a b", False)),
        ('tags."a.b"', OrderBy("tags", "a.b", True)),
        ("start_time DESC", OrderBy("attributes", "start_time", False)),
        ("attribute.run_name", OrderBy("attributes", "run_name", True)),
        ("  name   ASC  ", OrderBy("attributes", "name", True)),
    ],
)
def test_parses_order_by(text: str, expected: OrderBy) -> None:
    assert parse_order_by(text) == expected
    entity, key, ascending = parse_order_by(text)  # unpacks like MLflow's tuple
    assert (entity, key, ascending) == tuple(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics.acc DOWN", "unexpected token 'DOWN' at position 12"),
        ("metrics.acc DESC ASC", "unexpected token 'ASC' at position 17"),
        ("bogus.acc", "unknown entity 'bogus'"),
        ("", "empty order_by clause"),
    ],
)
def test_bad_order_by(text: str, message: str) -> None:
    with pytest.raises(InvalidParameterValue, match="Invalid order_by clause") as err:
        parse_order_by(text)
    assert message in err.value.message


def test_page_tokens_round_trip_in_mlflows_format() -> None:
    token = encode_page_token(40)
    assert json.loads(base64.b64decode(token)) == {"offset": 40}
    assert decode_page_token(token) == 40
    assert decode_page_token(None) == decode_page_token("") == 0
    mlflow_token = base64.b64encode(b'{"offset": "20"}').decode()
    assert decode_page_token(mlflow_token) == 20


@pytest.mark.parametrize(
    "token",
    [
        "not base64!",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b"[1, 2]").decode(),
        base64.b64encode(b'{"offset": -1}').decode(),
        base64.b64encode(b'{"offset": "x"}').decode(),
        base64.b64encode(b'{"offset": true}').decode(),
        base64.b64encode(b'{"other": 1}').decode(),
        base64.b64encode(b"\xff\xfe").decode(),
    ],
)
def test_bad_page_tokens(token: str) -> None:
    with pytest.raises(InvalidParameterValue, match="Invalid page token"):
        decode_page_token(token)


@pytest.mark.parametrize(
    ("pattern", "like", "glob"),
    [
        ("a%", "a%", "a*"),
        ("_b_", "_b_", "?b?"),
        ("50\\%", "50\\%", "50%"),
        ("x\\_y", "x\\_y", "x_y"),
        ("a*[b]?", "a*[b]?", "a[*][[]b][?]"),
        ("back\\\\slash", "back\\\\slash", "back\\slash"),
        ("trailing\\", "trailing\\\\", "trailing\\"),
        ("\\q", "q", "q"),
    ],
)
def test_like_patterns_translate_for_each_database(pattern: str, like: str, glob: str) -> None:
    assert like_pattern(pattern) == like
    assert glob_pattern(pattern) == glob
