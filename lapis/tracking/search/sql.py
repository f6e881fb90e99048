"""Comparisons to SQL, identical on SQLite and PostgreSQL.

``LIKE`` must be case-sensitive and ``ILIKE`` case-insensitive on both
databases; SQLite's LIKE ignores ASCII case, so there a LIKE becomes a GLOB
with the pattern translated, and ILIKE is ``lower(x) LIKE lower(p)`` everywhere.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal, or_

from lapis.errors import InvalidParameterValue

NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE")


def _glob(pattern: str) -> str:
    out = []
    for ch in pattern:
        if ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


def compare(col: Any, op: str, value: Any, dialect: str) -> ColumnElement[bool]:
    if op == "=":
        return col == value
    if op == "!=":
        return col != value
    if op == "<":
        return col < value
    if op == "<=":
        return col <= value
    if op == ">":
        return col > value
    if op == ">=":
        return col >= value
    if op == "LIKE":
        if dialect == "sqlite":
            return col.op("GLOB")(literal(_glob(str(value))))
        return col.like(value)
    if op == "ILIKE":
        return func.lower(col).like(func.lower(literal(str(value))))
    if op == "IN":
        return col.in_(list(value))
    if op == "NOT IN":
        return col.not_in(list(value))
    raise InvalidParameterValue(f"Unsupported comparator '{op}'")


def numeric(value: Any, what: str) -> float:
    if isinstance(value, float):
        return value
    raise InvalidParameterValue(
        f"Expected numeric value type for {what}, got '{value}' (remove the quotes?)"
    )


def string(value: Any, what: str, op: str) -> Any:
    if op in ("IN", "NOT IN"):
        return value
    if isinstance(value, str):
        return value
    raise InvalidParameterValue(
        f"Expected a quoted string value for {what}, got {value:g} (add quotes: '{value:g}')"
    )


def check_op(op: str, allowed: tuple[str, ...], what: str) -> None:
    if op not in allowed:
        raise InvalidParameterValue(
            f"Invalid comparator '{op}' for {what}; expected one of {', '.join(allowed)}"
        )


__all__ = ["NUMERIC_OPS", "STRING_OPS", "and_", "check_op", "compare", "numeric", "or_", "string"]
