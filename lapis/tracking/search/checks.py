"""What each search accepts, checked clause by clause with messages that point.

The grammar accepts any ``identifier comparator value``; whether a metric may
be compared with a string, or a tag with ``>``, is a question for the search
at hand. These helpers answer it and raise the same error shape as the parser
(``Invalid filter 'TEXT': DETAIL at position N (HINT)``).
"""

from __future__ import annotations

from collections.abc import Iterable

from lapis.errors import InvalidParameterValue
from lapis.tracking.search.grammar import (
    LIST_COMPARATORS,
    NULL_COMPARATORS,
    NUMERIC_COMPARATORS,
    STRING_COMPARATORS,
    Clause,
    invalid,
)

# Superset of MLflow's per-entity sets: IN and IS NULL are accepted wherever
# they have an obvious meaning, never rejected where MLflow accepts them.
STRING_OPS = STRING_COMPARATORS | LIST_COMPARATORS
KEY_VALUE_OPS = STRING_OPS | NULL_COMPARATORS
NUMERIC_OPS = NUMERIC_COMPARATORS


def describe(clause: Clause) -> str:
    return clause.key if clause.entity == "attributes" else f"{clause.entity}.{clause.key}"


def _order(ops: Iterable[str]) -> str:
    rank = ["=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL"]
    return ", ".join(sorted(ops, key=lambda op: rank.index(op) if op in rank else len(rank)))


class Checks:
    """Checks bound to one filter string, so every error can quote it."""

    def __init__(self, text: str) -> None:
        self.text = text

    def fail(
        self, clause: Clause, detail: str, hint: str | None = None, at_value: bool = False
    ) -> InvalidParameterValue:
        position = clause.value_position if at_value else clause.position
        return invalid(self.text, detail, position, "filter", hint)

    def unknown_key(self, clause: Clause, known: Iterable[str]) -> InvalidParameterValue:
        if clause.entity == "attributes":
            detail = f"Invalid attribute key '{clause.key}'"
        else:
            detail = f"Invalid {clause.entity} key '{clause.key}'"
        return self.fail(clause, detail, "expected one of " + ", ".join(known))

    def entity(self, clause: Clause, allowed: Iterable[str], search: str) -> None:
        allowed = tuple(allowed)
        if clause.entity not in allowed:
            raise self.fail(
                clause,
                f"{search} cannot be filtered by {clause.entity}",
                "expected " + " or ".join(f"{e}.<key>" for e in allowed),
            )

    def op(self, clause: Clause, allowed: Iterable[str]) -> None:
        allowed = frozenset(allowed)
        if clause.op not in allowed:
            raise self.fail(
                clause,
                f"comparator '{clause.op}' is not valid for {describe(clause)}",
                f"expected one of {_order(allowed)}",
            )

    def number(self, clause: Clause) -> int | float:
        """The clause's value as a number; a metric compared with a string is an error."""
        value = clause.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(
                clause,
                f"{describe(clause)} needs a numeric value, got {value!r}",
                "remove the quotes" if isinstance(value, str) else None,
                at_value=True,
            )
        return value

    def integer(self, clause: Clause) -> int:
        """An integer value; quoted digits are accepted as MLflow accepts them."""
        value = clause.value
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise self.fail(
            clause, f"{describe(clause)} needs an integer value, got {value!r}", at_value=True
        )

    def string(self, clause: Clause) -> str | list[str]:
        """A quoted string, or a list of them after IN / NOT IN."""
        value = clause.value
        if isinstance(value, str | list):
            return value
        raise self.fail(
            clause,
            f"{describe(clause)} needs a quoted string value, got {value!r}",
            f"add quotes: '{value}'",
            at_value=True,
        )


__all__ = ["KEY_VALUE_OPS", "NUMERIC_OPS", "STRING_OPS", "Checks", "describe"]
