"""MLflow's search grammar: a hand-written scanner and parser.

MLflow parses filter strings with ``sqlparse`` and then inspects the token
tree; we parse the same language directly, so that every error can name the
offending token and its position, and so that nothing SQL-like the user types
ever reaches the database as text. The language::

    filter     := clause (AND clause)*
    clause     := identifier comparator value
                | identifier IS [NOT] NULL
    identifier := segment ("." segment)*          e.g. metrics.acc, tags."a.b"
    segment    := bare word | `back ticked` | "double quoted"
    comparator := = | != | < | <= | > | >= | LIKE | ILIKE | IN | NOT IN
    value      := 'string' | "string" | number | "(" string ("," string)* [","] ")"

Keywords are case-insensitive. ``OR``, ``NOT`` and parentheses around clauses
are rejected, as MLflow rejects them. Inside a quoted string or key the quote
character is escaped by doubling it (``'it''s'``); backslashes are kept as
they are, so that ``LIKE`` patterns can use ``\\%`` and ``\\_``.

The parser knows nothing of what each search allows (which attributes exist,
which comparators suit a metric); :mod:`.runs`, :mod:`.experiments` and
:mod:`.registry` check that against the parsed :class:`Clause` objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from lapis.errors import InvalidParameterValue

METRIC = "metrics"
PARAM = "params"
TAG = "tags"
ATTRIBUTE = "attributes"
DATASET = "datasets"

ENTITY_ALIASES: dict[str, str] = {
    "metric": METRIC,
    "metrics": METRIC,
    "param": PARAM,
    "params": PARAM,
    "parameter": PARAM,
    "parameters": PARAM,
    "tag": TAG,
    "tags": TAG,
    "attribute": ATTRIBUTE,
    "attributes": ATTRIBUTE,
    "attr": ATTRIBUTE,
    "run": ATTRIBUTE,
    "dataset": DATASET,
    "datasets": DATASET,
}

COMPARATORS = (
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "LIKE",
    "ILIKE",
    "IN",
    "NOT IN",
    "IS NULL",
    "IS NOT NULL",
)
NUMERIC_COMPARATORS = frozenset({"=", "!=", "<", "<=", ">", ">="})
STRING_COMPARATORS = frozenset({"=", "!=", "LIKE", "ILIKE"})
LIST_COMPARATORS = frozenset({"IN", "NOT IN"})
NULL_COMPARATORS = frozenset({"IS NULL", "IS NOT NULL"})

Value = str | int | float | list[str] | None

_WS = re.compile(r"\s*")
_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-/]*")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z0-9_.])")
_OPERATOR = re.compile(r"[<>=!]+")
_SYMBOLS = "<>=!"
_KEYWORDS = frozenset({"AND", "OR", "NOT", "LIKE", "ILIKE", "IN", "IS", "NULL", "ASC", "DESC"})


@dataclass(frozen=True, slots=True)
class Clause:
    """One ``identifier comparator value`` clause, with where it came from.

    ``entity`` is the canonical plural (metrics, params, tags, attributes,
    datasets); ``value`` is a str, an int or float, a list of str after IN /
    NOT IN, or None after IS [NOT] NULL.
    """

    entity: str
    key: str
    op: str
    value: Value
    position: int = 0
    value_position: int = 0


class OrderBy(NamedTuple):
    """``(entity, key, ascending)``; a tuple so it unpacks like MLflow's."""

    entity: str
    key: str
    ascending: bool


@dataclass(frozen=True, slots=True)
class _Identifier:
    entity: str
    key: str
    position: int


def invalid(
    text: str, detail: str, position: int | None = None, what: str = "filter"
) -> InvalidParameterValue:
    """The one error shape every search error takes, so messages read the same everywhere."""
    where = "" if position is None else f" at position {position}"
    return InvalidParameterValue(f"Invalid {what} '{text}': {detail}{where}")


class _Parser:
    """A cursor over the text; each method consumes one production or raises."""

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.pos = 0
        self.what = what

    # --- scanning helpers ---------------------------------------------------
    def skip_ws(self) -> None:
        m = _WS.match(self.text, self.pos)
        self.pos = m.end() if m else self.pos

    def at_end(self) -> bool:
        self.skip_ws()
        return self.pos >= len(self.text)

    def token_here(self) -> str:
        """The token starting at the cursor, for error messages."""
        rest = self.text[self.pos :]
        for pattern in (_WORD, _OPERATOR):
            m = pattern.match(rest)
            if m:
                return m.group()
        return rest[:1]

    def error(
        self, detail: str | None = None, position: int | None = None
    ) -> InvalidParameterValue:
        self.skip_ws()
        pos = self.pos if position is None else position
        if detail is None:
            if pos >= len(self.text):
                return invalid(self.text, "unexpected end", pos, self.what)
            saved, self.pos = self.pos, pos
            detail = f"unexpected token '{self.token_here()}'"
            self.pos = saved
        return invalid(self.text, detail, pos, self.what)

    def peek_keyword(self) -> str | None:
        self.skip_ws()
        m = _WORD.match(self.text, self.pos)
        if m and m.group().upper() in _KEYWORDS:
            return m.group().upper()
        return None

    def take_keyword(self, keyword: str) -> bool:
        if self.peek_keyword() == keyword:
            self.skip_ws()
            self.pos += len(keyword)
            return True
        return False

    def quoted(self, quote: str) -> str:
        """Consume a quoted run starting at the cursor; a doubled quote is a literal quote."""
        start = self.pos
        self.pos += 1
        out: list[str] = []
        while True:
            end = self.text.find(quote, self.pos)
            if end < 0:
                raise self.error(f"unterminated quote {quote}", start)
            out.append(self.text[self.pos : end])
            if self.text.startswith(quote * 2, end):
                out.append(quote)
                self.pos = end + 2
                continue
            self.pos = end + 1
            return "".join(out)

    # --- productions --------------------------------------------------------
    def segment(self) -> tuple[str, bool]:
        self.skip_ws()
        ch = self.text[self.pos : self.pos + 1]
        if ch in ("`", '"'):
            return self.quoted(ch), True
        m = _WORD.match(self.text, self.pos)
        if not m:
            raise self.error()
        self.pos = m.end()
        return m.group(), False

    def identifier(self) -> _Identifier:
        self.skip_ws()
        start = self.pos
        if self.peek_keyword() in ("AND", "OR", "NOT"):
            raise self.error()
        segments = [self.segment()]
        while self.text.startswith(".", self.pos):
            self.pos += 1
            segments.append(self.segment())
        if len(segments) == 1:
            return _Identifier(ATTRIBUTE, segments[0][0], start)
        prefix = segments[0][0]
        entity = ENTITY_ALIASES.get(prefix.lower())
        if entity is None:
            known = ", ".join(sorted({"metrics", "params", "tags", "attributes", "datasets"}))
            raise self.error(f"unknown entity '{prefix}' (expected one of {known})", start)
        key = ".".join(text for text, _ in segments[1:])
        if not key:
            raise self.error("empty key", start)
        return _Identifier(entity, key, start)

    def comparator(self) -> str:
        self.skip_ws()
        for op in ("!=", "<=", ">=", "=", "<", ">"):
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                return op
        if self.text.startswith("!", self.pos):
            raise self.error()
        for keyword in ("LIKE", "ILIKE", "IN"):
            if self.take_keyword(keyword):
                return keyword
        if self.take_keyword("NOT"):
            if self.take_keyword("IN"):
                return "NOT IN"
            raise self.error()
        if self.take_keyword("IS"):
            negated = self.take_keyword("NOT")
            if self.take_keyword("NULL"):
                return "IS NOT NULL" if negated else "IS NULL"
            raise self.error()
        if self.at_end():
            raise self.error("expected a comparator, found the end")
        raise self.error(f"unexpected token '{self.token_here()}' (expected a comparator)")

    def string(self) -> str | None:
        self.skip_ws()
        ch = self.text[self.pos : self.pos + 1]
        if ch in ("'", '"'):
            return self.quoted(ch)
        return None

    def value(self, comparator: str) -> Value:
        self.skip_ws()
        if comparator in LIST_COMPARATORS:
            return self.string_list()
        s = self.string()
        if s is not None:
            return s
        m = _NUMBER.match(self.text, self.pos)
        if m:
            self.pos = m.end()
            literal = m.group()
            if any(c in literal for c in ".eE"):
                return float(literal)
            return int(literal)
        if self.at_end():
            raise self.error("expected a value, found the end")
        raise self.error(f"unexpected token '{self.token_here()}' (expected a value)")

    def string_list(self) -> list[str]:
        if not self.text.startswith("(", self.pos):
            raise self.error(
                f"unexpected token '{self.token_here()}' (IN needs a list such as ('a', 'b'))"
            )
        self.pos += 1
        items: list[str] = []
        while True:
            self.skip_ws()
            if self.text.startswith(")", self.pos) and items:
                self.pos += 1
                return items
            item = self.string()
            if item is None:
                raise self.error(
                    None
                    if self.at_end()
                    else f"unexpected token '{self.token_here()}' (a list holds quoted strings)"
                )
            items.append(item)
            self.skip_ws()
            if self.text.startswith(",", self.pos):
                self.pos += 1
            elif not self.text.startswith(")", self.pos):
                raise self.error()

    def clause(self) -> Clause:
        ident = self.identifier()
        comparator = self.comparator()
        self.skip_ws()
        value_pos = self.pos
        value = None if comparator in NULL_COMPARATORS else self.value(comparator)
        return Clause(ident.entity, ident.key, comparator, value, ident.position, value_pos)

    def filter(self) -> list[Clause]:
        clauses = [self.clause()]
        while not self.at_end():
            if self.peek_keyword() == "OR":
                raise self.error("MLflow's grammar has no OR; join clauses with AND")
            if not self.take_keyword("AND"):
                raise self.error()
            if self.at_end():
                raise self.error("expected a clause after AND")
            clauses.append(self.clause())
        return clauses


def parse_filter(filter_string: str | None) -> list[Clause]:
    """Parse an MLflow filter string into its AND-ed comparisons (empty for no filter)."""
    if filter_string is None or not filter_string.strip():
        return []
    return _Parser(filter_string, "filter").filter()


def parse_order_by(order_by: str) -> OrderBy:
    """Parse ``"metrics.acc DESC"`` into ``(entity_type, key, ascending)``."""
    parser = _Parser(order_by, "order_by clause")
    if parser.at_end():
        raise invalid(order_by, "empty order_by clause", None, "order_by clause")
    ident = parser.identifier()
    ascending = True
    if parser.take_keyword("DESC"):
        ascending = False
    else:
        parser.take_keyword("ASC")
    if not parser.at_end():
        raise parser.error()
    return OrderBy(ident.entity, ident.key, ascending)


def value_kind(value: Value) -> str:
    """Describe a parsed value for messages: 'string', 'number' or 'list'."""
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "number"


__all__ = [
    "ATTRIBUTE",
    "DATASET",
    "LIST_COMPARATORS",
    "METRIC",
    "NULL_COMPARATORS",
    "NUMERIC_COMPARATORS",
    "PARAM",
    "STRING_COMPARATORS",
    "TAG",
    "COMPARATORS",
    "Clause",
    "OrderBy",
    "invalid",
    "parse_filter",
    "parse_order_by",
    "value_kind",
]
