"""MLflow's search filter grammar: ``metrics.acc > 0.9 and params.lr = '0.1'``.

A filter is comparisons joined by AND (MLflow has no OR). Each comparison is
``<entity>.<key> <op> <value>`` where the entity is metrics, params, tags,
attributes or datasets (with MLflow's alternative spellings), keys may be
quoted with backticks or double quotes, and values are numbers, quoted
strings or — after IN / NOT IN — a parenthesised list of strings. Errors say
which token is wrong and where it starts, so a user can fix a long filter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lapis.errors import InvalidParameterValue

ENTITY_ALIASES = {
    "metric": "metrics",
    "metrics": "metrics",
    "param": "params",
    "params": "params",
    "parameter": "params",
    "parameters": "params",
    "tag": "tags",
    "tags": "tags",
    "attribute": "attributes",
    "attributes": "attributes",
    "attr": "attributes",
    "run": "attributes",
    "dataset": "datasets",
    "datasets": "datasets",
}
COMPARATORS = ("=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN")

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<op>!=|<=|>=|=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<ident>(?:[A-Za-z_]\w*|`[^`]*`)(?:\.(?:`[^`]*`|"[^"]*"|[\w\-/:.]*[\w\-/:]))?)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Clause:
    entity: str  # metrics | params | tags | attributes | datasets
    key: str
    op: str
    value: Any  # float for numbers, str for strings, list[str] for IN


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _error(filter_string: str, message: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"Invalid filter '{filter_string}': {message}")


def _tokenize(s: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if m is None:
            raise _error(s, f"unexpected character '{s[pos]}' at position {pos}")
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    return out


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "`\"'":
        body = text[1:-1]
        if text[0] == "'":
            body = body.replace("''", "'")
        return re.sub(r"\\(.)", r"\1", body) if text[0] != "`" else body
    return text


def split_identifier(text: str, filter_string: str, pos: int) -> tuple[str, str]:
    """``metrics.`my key``` → ("metrics", "my key"); a bare name is an attribute."""
    if text[0] in '`"':
        return "attributes", _unquote(text)
    head, dot, rest = text.partition(".")
    if not dot:
        return "attributes", text
    entity = ENTITY_ALIASES.get(head.lower())
    if entity is None:
        raise _error(
            filter_string,
            f"unknown entity '{head}' at position {pos}; expected metrics, params, tags, "
            "attributes or datasets",
        )
    key = _unquote(rest.strip())
    if not key:
        raise _error(filter_string, f"missing key after '{head}.' at position {pos}")
    return entity, key


def parse_filter(filter_string: str | None) -> list[Clause]:
    s = (filter_string or "").strip()
    if not s:
        return []
    toks = _tokenize(s)
    clauses: list[Clause] = []
    i = 0

    def need(kinds: tuple[str, ...], what: str) -> _Tok:
        nonlocal i
        if i >= len(toks):
            raise _error(s, f"expected {what} at the end")
        tok = toks[i]
        if tok.kind not in kinds:
            raise _error(s, f"expected {what} at position {tok.pos}, found '{tok.text}'")
        i += 1
        return tok

    while True:
        ident = need(("ident",), "an identifier such as metrics.acc")
        if ident.text.upper() in ("AND", "OR", "NOT", "LIKE", "ILIKE", "IN"):
            raise _error(s, f"expected an identifier at position {ident.pos}, found '{ident.text}'")
        entity, key = split_identifier(ident.text, s, ident.pos)
        if i >= len(toks):
            raise _error(s, f"missing comparator after '{ident.text}'")
        tok = toks[i]
        op = tok.text.upper() if tok.kind in ("op", "ident") else ""
        if (
            tok.kind == "ident"
            and op == "NOT"
            and i + 1 < len(toks)
            and toks[i + 1].text.upper() == "IN"
        ):
            op = "NOT IN"
            i += 1
        if op not in COMPARATORS:
            raise _error(
                s,
                f"invalid comparator '{tok.text}' at position {tok.pos}; expected one of "
                f"{', '.join(COMPARATORS)}",
            )
        i += 1
        value: Any
        if op in ("IN", "NOT IN"):
            need(("lparen",), "'(' to open the value list")
            items: list[str] = []
            while True:
                item = need(("string", "number"), "a quoted value")
                items.append(_unquote(item.text) if item.kind == "string" else item.text)
                sep = need(("comma", "rparen"), "',' or ')'")
                if sep.kind == "rparen":
                    break
            value = items
        else:
            tok = need(("string", "number"), "a value (a number or a quoted string)")
            value = _unquote(tok.text) if tok.kind == "string" else float(tok.text)
        clauses.append(Clause(entity, key, op, value))
        if i >= len(toks):
            return clauses
        conj = toks[i]
        if conj.kind != "ident" or conj.text.upper() != "AND":
            hint = " (MLflow's grammar has no OR)" if conj.text.upper() == "OR" else ""
            raise _error(s, f"expected AND at position {conj.pos}, found '{conj.text}'{hint}")
        i += 1


@dataclass(frozen=True)
class OrderBy:
    entity: str
    key: str
    ascending: bool


_ORDER = re.compile(r"^\s*(?P<ident>.+?)(?:\s+(?P<dir>ASC|DESC))?\s*$", re.IGNORECASE)


def parse_order_by(text: str) -> OrderBy:
    m = _ORDER.match(text or "")
    if m is None:
        raise InvalidParameterValue(f"Invalid order_by clause '{text}'")
    entity, key = split_identifier(m.group("ident").strip(), text, 0)
    return OrderBy(entity, key, (m.group("dir") or "ASC").upper() == "ASC")
