"""MLflow's search grammar: a hand-written scanner and parser.

MLflow parses filter strings with ``sqlparse`` and then inspects the token
tree; we parse the same language directly, so that every error can name the
offending token and its position, and so that nothing the user types ever
reaches the database as SQL text. The language::

    filter     := clause (AND clause)*
    clause     := identifier comparator value
                | identifier IS [NOT] NULL
    identifier := segment ("." segment)*          e.g. metrics.acc, tags."a.b"
    segment    := bare word | `back-ticked` | "double-quoted"
    comparator := = | != | < | <= | > | >= | LIKE | ILIKE | IN | NOT IN
    value      := 'string' | "string" | number | "(" string ("," string)* [","] ")"

Keywords are case-insensitive. ``OR``, ``NOT`` and parentheses around clauses
are rejected, as MLflow rejects them. The first segment of a dotted
identifier names the entity (``metrics``, ``params``, ``tags``,
``attributes``, ``datasets``, with MLflow's other spellings); the rest, dots
included, is the key, so ``tags.mlflow.runName`` is the tag
``mlflow.runName``. A single segment is an attribute (``status``,
```Run name```). Inside a quoted string or key the quote character is
escaped by doubling it (``'it''s'``); backslashes are kept as they are, so
that LIKE patterns can use ``\\%`` and ``\\_``.

The parser knows nothing of what each search allows (which attributes exist,
which comparators suit a metric): :mod:`.runs`, :mod:`.experiments` and
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

COMPARATORS = ("=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN")
NUMERIC_COMPARATORS = frozenset({"=", "!=", "<", "<=", ">", ">="})
STRING_COMPARATORS = frozenset({"=", "!=", "LIKE", "ILIKE"})
LIST_COMPARATORS = frozenset({"IN", "NOT IN"})
NULL_COMPARATORS = frozenset({"IS NULL", "IS NOT NULL"})

Value = str | int | float | list[str] | None

_WS = re.compile(r"\s*")
_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-/]*")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z0-9_.])")
_OPERATOR = re.compile(r"[<>=!]+")
_OPERATORS = ("!=", "<=", ">=", "=", "<", ">")  # longest first
_KEYWORDS = frozenset({"AND", "OR", "NOT", "LIKE", "ILIKE", "IN", "IS", "NULL", "ASC", "DESC"})
_IDENT_HINT = "expected an identifier such as metrics.acc"


@dataclass(frozen=True, slots=True)
class Clause:
    """One ``identifier comparator value`` clause, with where it came from.

    ``entity`` is the canonical plural (metrics, params, tags, attributes,
    datasets); ``op`` is upper case; ``value`` is a str, an int or float, a
    list of str after IN / NOT IN, or None after IS [NOT] NULL. The positions
    let later checks point at the clause and its value.
    """

    entity: str
    key: str
    op: str
    value: Value
    position: int = 0
    value_position: int = 0


class OrderBy(NamedTuple):
    """``(entity, key, ascending)``: a tuple, so it unpacks like MLflow's."""

    entity: str
    key: str
    ascending: bool


def invalid(
    text: str,
    detail: str,
    position: int | None = None,
    what: str = "filter",
    hint: str | None = None,
) -> InvalidParameterValue:
    """The one shape every search error takes, so messages read the same everywhere:
    ``Invalid filter 'TEXT': DETAIL at position N (HINT)``."""
    where = "" if position is None else f" at position {position}"
    tail = f" ({hint})" if hint else ""
    return InvalidParameterValue(f"Invalid {what} '{text}': {detail}{where}{tail}")


class _Parser:
    """A cursor over the text; each production method consumes input or raises."""

    def __init__(self, text: str, what: str, aliases: dict[str, str] | None = None) -> None:
        self.aliases = ENTITY_ALIASES if aliases is None else aliases
        self.text = text
        self.pos = 0
        self.what = what

    # --- scanning helpers ---------------------------------------------------
    def skip_ws(self) -> None:
        m = _WS.match(self.text, self.pos)
        if m:
            self.pos = m.end()

    def at_end(self) -> bool:
        self.skip_ws()
        return self.pos >= len(self.text)

    def starts(self, prefix: str) -> bool:
        return self.text.startswith(prefix, self.pos)

    def token_at(self, pos: int) -> str:
        """The token starting at ``pos``, for error messages."""
        for pattern in (_WORD, _OPERATOR):
            m = pattern.match(self.text, pos)
            if m:
                return m.group()
        return self.text[pos : pos + 1]

    def error(
        self, detail: str | None = None, position: int | None = None, hint: str | None = None
    ) -> InvalidParameterValue:
        """``detail`` defaults to naming the token at ``position`` (default: the cursor)."""
        self.skip_ws()
        pos = self.pos if position is None else position
        if detail is None:
            if pos >= len(self.text):
                detail = "unexpected end of text"
            else:
                detail = f"unexpected token '{self.token_at(pos)}'"
        return invalid(self.text, detail, pos, self.what, hint)

    def peek_keyword(self) -> str | None:
        self.skip_ws()
        m = _WORD.match(self.text, self.pos)
        if m and m.group().upper() in _KEYWORDS:
            return m.group().upper()
        return None

    def take_keyword(self, keyword: str) -> bool:
        if self.peek_keyword() == keyword:
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
    def segment(self) -> str:
        self.skip_ws()
        ch = self.text[self.pos : self.pos + 1]
        if ch in ("`", '"'):
            return self.quoted(ch)
        m = _WORD.match(self.text, self.pos)
        if not m:
            raise self.error(hint=_IDENT_HINT)
        self.pos = m.end()
        return m.group()

    def identifier(self) -> tuple[str, str, int]:
        self.skip_ws()
        start = self.pos
        if self.peek_keyword() in ("AND", "OR", "NOT"):
            raise self.error(hint=_IDENT_HINT)
        segments = [self.segment()]
        while self.starts("."):
            self.pos += 1
            segments.append(self.segment())
        if len(segments) == 1:
            return ATTRIBUTE, segments[0], start
        entity = self.aliases.get(segments[0].lower())
        if entity is None:
            known = ", ".join(sorted(set(self.aliases.values())))
            raise self.error(f"unknown entity '{segments[0]}'", start, f"expected one of {known}")
        key = ".".join(segments[1:])
        if not key:
            raise self.error("empty key", start)
        return entity, key, start

    def comparator(self) -> str:
        self.skip_ws()
        for op in _OPERATORS:
            if self.starts(op):
                self.pos += len(op)
                return op
        for keyword in ("LIKE", "ILIKE", "IN"):
            if self.take_keyword(keyword):
                return keyword
        hint = "expected a comparator: " + ", ".join(COMPARATORS)
        if self.take_keyword("NOT"):
            if self.take_keyword("IN"):
                return "NOT IN"
            raise self.error(hint="expected IN after NOT")
        if self.take_keyword("IS"):
            negated = self.take_keyword("NOT")
            if self.take_keyword("NULL"):
                return "IS NOT NULL" if negated else "IS NULL"
            raise self.error(hint="expected IS NULL or IS NOT NULL")
        raise self.error(hint=hint)

    def string(self) -> str | None:
        self.skip_ws()
        ch = self.text[self.pos : self.pos + 1]
        if ch in ("'", '"'):
            return self.quoted(ch)
        return None

    def value(self) -> str | int | float:
        s = self.string()
        if s is not None:
            return s
        m = _NUMBER.match(self.text, self.pos)
        if not m:
            raise self.error(hint="expected a value: a number or a quoted string")
        self.pos = m.end()
        literal = m.group()
        if any(c in literal for c in ".eE"):
            return float(literal)
        number = int(literal)
        # Past 64 bits no column can hold it; as a float it still compares correctly.
        return number if -(2**63) <= number < 2**63 else float(number)

    def string_list(self) -> list[str]:
        self.skip_ws()
        if not self.starts("("):
            raise self.error(hint="IN needs a list such as ('a', 'b')")
        self.pos += 1
        items: list[str] = []
        while True:
            self.skip_ws()
            if items and self.starts(")"):
                self.pos += 1
                return items
            item = self.string()
            if item is None:
                raise self.error(hint="a list holds one or more quoted strings")
            items.append(item)
            self.skip_ws()
            if self.starts(","):
                self.pos += 1
            elif not self.starts(")"):
                raise self.error(hint="expected ',' or ')'")

    def clause(self) -> Clause:
        entity, key, start = self.identifier()
        op = self.comparator()
        self.skip_ws()
        value_pos = self.pos
        value: Value = None
        if op in LIST_COMPARATORS:
            value = self.string_list()
        elif op not in NULL_COMPARATORS:
            value = self.value()
        return Clause(entity, key, op, value, start, value_pos)

    def clauses(self) -> list[Clause]:
        out = [self.clause()]
        while not self.at_end():
            if self.peek_keyword() == "OR":
                raise self.error(hint="MLflow's grammar has no OR; join clauses with AND")
            if not self.take_keyword("AND"):
                raise self.error(hint="expected AND between clauses")
            if self.at_end():
                raise self.error(hint="expected a clause after AND")
            out.append(self.clause())
        return out


def parse_filter(filter_string: str | None, aliases: dict[str, str] | None = None) -> list[Clause]:
    """Parse an MLflow filter string into its AND-ed clauses (none for an empty filter).
    ``aliases`` maps entity prefixes to entities, for grammars other than runs' (traces)."""
    if filter_string is None or not filter_string.strip():
        return []
    return _Parser(filter_string, "filter", aliases).clauses()


def parse_order_by(order_by: str) -> OrderBy:
    """Parse ``"metrics.acc DESC"`` into ``OrderBy("metrics", "acc", False)``."""
    parser = _Parser(order_by or "", "order_by clause")
    if parser.at_end():
        raise invalid(order_by or "", "empty order_by clause", None, "order_by clause")
    entity, key, _ = parser.identifier()
    ascending = not parser.take_keyword("DESC")
    if ascending:
        parser.take_keyword("ASC")
    if not parser.at_end():
        raise parser.error(hint="expected ASC or DESC after the key")
    return OrderBy(entity, key, ascending)


__all__ = [
    "ATTRIBUTE",
    "COMPARATORS",
    "DATASET",
    "ENTITY_ALIASES",
    "LIST_COMPARATORS",
    "METRIC",
    "NULL_COMPARATORS",
    "NUMERIC_COMPARATORS",
    "PARAM",
    "STRING_COMPARATORS",
    "TAG",
    "Clause",
    "OrderBy",
    "invalid",
    "parse_filter",
    "parse_order_by",
]
