"""Comparisons that mean the same on SQLite and PostgreSQL.

The statements built here carry no dialect: the same ``Select`` runs on
either database, and the few constructs that must differ compile differently.

``LIKE`` is case-sensitive and ``ILIKE`` case-insensitive on both. SQLite's
own LIKE ignores ASCII case, and ``PRAGMA case_sensitive_like`` would change
every connection in the pool, so on SQLite a LIKE compiles to ``GLOB`` with
the pattern translated (``%`` → ``*``, ``_`` → ``?``, GLOB's own wildcards
bracketed); PostgreSQL keeps ``LIKE``. In patterns a backslash escapes the
next character (``'50\\%'`` matches the text ``50%``) on both databases, as
PostgreSQL's LIKE does by default; a trailing lone backslash is literal.
``ILIKE`` is PostgreSQL's own operator and ``lower(x) LIKE lower(p)`` on SQLite.

A run's dataset context lives in ``run_inputs.tags_json`` (the input's MLflow
tags as a JSON list); :class:`dataset_context` reads the
``mlflow.data.context`` tag out of it with each database's JSON functions.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement, String, TypeDecorator, bindparam
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

CONTEXT_TAG = "mlflow.data.context"
_ESCAPE = "\\"


def _pattern_parts(pattern: str) -> list[tuple[bool, str]]:
    """Split a LIKE pattern into (is_wildcard, char) pairs, resolving backslash escapes."""
    parts: list[tuple[bool, str]] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == _ESCAPE and i + 1 < len(pattern):
            parts.append((False, pattern[i + 1]))
            i += 2
            continue
        parts.append((ch in "%_", ch))
        i += 1
    return parts


def like_pattern(pattern: str) -> str:
    """The pattern with every literal ``%``, ``_`` and ``\\`` escaped (``ESCAPE '\\'``)."""
    out = []
    for wild, ch in _pattern_parts(pattern):
        out.append(ch if wild or ch not in "%_\\" else _ESCAPE + ch)
    return "".join(out)


def glob_pattern(pattern: str) -> str:
    """The LIKE pattern as an SQLite GLOB pattern, which is case-sensitive."""
    out = []
    for wild, ch in _pattern_parts(pattern):
        if wild:
            out.append("*" if ch == "%" else "?")
        else:
            out.append(f"[{ch}]" if ch in "*?[" else ch)
    return "".join(out)


class _LikePattern(TypeDecorator[str]):
    """Binds a normalised LIKE pattern, turned into a GLOB pattern for SQLite."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        if value is None or dialect.name != "sqlite":
            return value
        return glob_pattern(value)

    def process_literal_param(self, value: str | None, dialect: Any) -> str:
        # String's own literal processor adds the quotes.
        return self.process_bind_param(value, dialect) or ""


class case_sensitive_like(FunctionElement[bool]):
    """``column LIKE pattern`` that respects case on every database."""

    type = Boolean()
    name = "case_sensitive_like"
    inherit_cache = True
    # A predicate, like a comparison: without this, databases with no boolean
    # type would get ``(x GLOB p) = 1``, which hides the operator from SQLite's planner.
    _is_implicitly_boolean = True


@compiles(case_sensitive_like)
def _like_default(element: case_sensitive_like, compiler: SQLCompiler, **kw: Any) -> str:
    column, pattern = list(element.clauses)
    return compiler.process(column.like(pattern, escape=_ESCAPE), **kw)


@compiles(case_sensitive_like, "sqlite")
def _like_sqlite(element: case_sensitive_like, compiler: SQLCompiler, **kw: Any) -> str:
    column, pattern = list(element.clauses)
    return f"({compiler.process(column, **kw)} GLOB {compiler.process(pattern, **kw)})"


class dataset_context(FunctionElement[str]):
    """The ``mlflow.data.context`` tag of a run input, read from its ``tags_json``."""

    type = String()
    name = "dataset_context"
    inherit_cache = True


@compiles(dataset_context)
def _context_default(element: dataset_context, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"dataset.context filters need SQLite or PostgreSQL, not {compiler.dialect}")


@compiles(dataset_context, "sqlite")
def _context_sqlite(element: dataset_context, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = list(element.clauses)
    col = compiler.process(column, **kw)
    return (
        f"(SELECT json_extract(ctx.value, '$.value') FROM json_each({col}) AS ctx "
        f"WHERE json_extract(ctx.value, '$.key') = '{CONTEXT_TAG}' LIMIT 1)"
    )


@compiles(dataset_context, "postgresql")
def _context_postgresql(element: dataset_context, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = list(element.clauses)
    col = compiler.process(column, **kw)
    return (
        f"(SELECT ctx ->> 'value' FROM jsonb_array_elements(CAST({col} AS jsonb)) AS ctx "
        f"WHERE ctx ->> 'key' = '{CONTEXT_TAG}' LIMIT 1)"
    )


def compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    """``column <op> value`` for every comparator of the grammar except IS [NOT] NULL."""
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "LIKE":
        pattern = bindparam(None, like_pattern(str(value)), type_=_LikePattern())
        return case_sensitive_like(column, pattern)
    if op == "ILIKE":
        return column.ilike(like_pattern(str(value)), escape=_ESCAPE)
    if op == "IN":
        return column.in_(list(value))
    if op == "NOT IN":
        return column.not_in(list(value))
    raise ValueError(f"no SQL for comparator {op!r}")


def ordered(expression: Any, ascending: bool) -> Any:
    """Sort by ``expression`` with NULLs last in both directions, on both databases."""
    return (expression.asc() if ascending else expression.desc()).nulls_last()


__all__ = [
    "CONTEXT_TAG",
    "case_sensitive_like",
    "compare",
    "dataset_context",
    "glob_pattern",
    "like_pattern",
    "ordered",
]
