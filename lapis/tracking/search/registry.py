"""Model registry search: registered models and model versions to SELECTs of keys.

Follows MLflow's model registry SqlAlchemyStore:

* Registered models filter on ``name`` and ``tags.<key>`` and order by
  ``name``, ``timestamp`` / ``last_updated_timestamp`` (and, beyond MLflow,
  ``creation_timestamp``), with ``name ASC`` as tiebreak.
* Model versions filter on ``name``, ``version_number``, ``run_id``,
  ``source_path`` and ``tags.<key>``; the default order is
  ``last_updated_timestamp DESC, name ASC, version_number DESC``, and
  ``name ASC``, ``version DESC`` break ties. Deleted versions never match.
* Prompts live in the same tables, marked with the tag
  ``mlflow.prompt.is_prompt = 'true'``, and are hidden unless the filter asks
  for them (``tags.`mlflow.prompt.is_prompt` = 'true'``). The client asks for
  models with ``tags.`mlflow.prompt.is_prompt` != 'true'``; models carry no
  such tag, so that clause reads as "not a prompt", not as "tag present".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, exists, or_, select

from lapis.store.sql.tables import (
    model_version_tags,
    model_versions,
    registered_model_tags,
    registered_models,
)
from lapis.tracking.search.checks import KEY_VALUE_OPS, NUMERIC_OPS, STRING_OPS, Checks
from lapis.tracking.search.grammar import Clause, invalid, parse_filter, parse_order_by
from lapis.tracking.search.sql import compare

PROMPT_TAG = "mlflow.prompt.is_prompt"
MODEL_ORDER = {
    "name": "name",
    "timestamp": "last_updated_time",
    "last_updated_timestamp": "last_updated_time",
    "creation_timestamp": "creation_time",
}
VERSION_ORDER = {
    "name": "name",
    "version_number": "version",
    "creation_timestamp": "creation_time",
    "last_updated_timestamp": "last_updated_time",
}
VERSION_DEFAULT_ORDER = ("last_updated_timestamp DESC", "name ASC", "version_number DESC")
VERSION_KEYS = ("name", "version_number", "run_id", "source_path")


def _is_prompt_clause(c: Clause) -> bool:
    return c.entity == "tags" and c.key == PROMPT_TAG


def _wants_prompts(clauses: list[Clause]) -> bool:
    for c in clauses:
        if _is_prompt_clause(c) and isinstance(c.value, str):
            value = c.value.lower()
            return (c.op == "=" and value == "true") or (c.op == "!=" and value == "false")
    return False


def _not_a_prompt(name_column: Any) -> ColumnElement[bool]:
    """No prompt tag on the registered model nor on any of its versions."""
    rm, mv = registered_model_tags.c, model_version_tags.c
    return ~or_(
        exists().where(rm.name == name_column, rm.key == PROMPT_TAG, rm.value == "true"),
        exists().where(mv.name == name_column, mv.key == PROMPT_TAG, mv.value == "true"),
    )


def _tag(c: Clause, checks: Checks, table: Table, *match: Any) -> ColumnElement[bool]:
    checks.op(c, KEY_VALUE_OPS)
    where = [*match, table.c.key == c.key]
    if c.op == "IS NULL":
        return ~exists().where(*where)
    if c.op == "IS NOT NULL":
        return exists().where(*where)
    return exists().where(*where, compare(table.c.value, c.op, checks.string(c)))


def _model_condition(c: Clause, checks: Checks) -> ColumnElement[bool]:
    checks.entity(c, ("attributes", "tags"), "registered models")
    if c.entity == "tags":
        rmt = registered_model_tags
        return _tag(c, checks, rmt, rmt.c.name == registered_models.c.name)
    if c.key != "name":
        raise checks.unknown_key(c, ["name"])
    checks.op(c, STRING_OPS)
    return compare(registered_models.c.name, c.op, checks.string(c))


def _version_condition(c: Clause, checks: Checks) -> ColumnElement[bool]:
    checks.entity(c, ("attributes", "tags"), "model versions")
    mv = model_versions.c
    if c.entity == "tags":
        mvt = model_version_tags
        return _tag(c, checks, mvt, mvt.c.name == mv.name, mvt.c.version == mv.version)
    if c.key == "version_number":
        checks.op(c, NUMERIC_OPS)
        return compare(mv.version, c.op, checks.integer(c))
    if c.key in ("name", "run_id"):
        checks.op(c, STRING_OPS)
        return compare(mv[c.key], c.op, checks.string(c))
    if c.key == "source_path":
        checks.op(c, STRING_OPS)
        return compare(mv.source, c.op, checks.string(c))
    raise checks.unknown_key(c, VERSION_KEYS)


def _ordering(
    order_by: Sequence[str], table: Table, keys: dict[str, str]
) -> tuple[list[Any], set[str]]:
    terms: list[Any] = []
    seen: set[str] = set()
    for text in order_by:
        entity, key, ascending = parse_order_by(text)
        if entity != "attributes" or key not in keys:
            raise invalid(
                text,
                f"cannot order by {key if entity == 'attributes' else entity}",
                None,
                "order_by clause",
                f"expected one of {', '.join(keys)}",
            )
        column = keys[key]
        if column in seen:
            raise invalid(text, "duplicate order_by field", None, "order_by clause")
        seen.add(column)
        terms.append(table.c[column].asc() if ascending else table.c[column].desc())
    return terms, seen


def _page(stmt: Select[Any], max_results: int | None, offset: int) -> Select[Any]:
    if max_results is not None:
        stmt = stmt.limit(max_results)
    return stmt.offset(offset) if offset else stmt


def registered_model_search_select(
    filter_string: str | None,
    order_by: Sequence[str] | None,
    max_results: int | None = None,
    offset: int = 0,
    dialect: str | None = None,
) -> Select[Any]:
    """``SELECT registered_models.name`` for one page of a registered model search."""
    del dialect
    checks = Checks(filter_string or "")
    clauses = parse_filter(filter_string)
    prompts = _wants_prompts(clauses)
    conditions = [
        _model_condition(c, checks) for c in clauses if prompts or not _is_prompt_clause(c)
    ]
    if not prompts:
        conditions.append(_not_a_prompt(registered_models.c.name))
    terms, seen = _ordering(list(order_by or []), registered_models, MODEL_ORDER)
    if "name" not in seen:
        terms.append(registered_models.c.name.asc())
    stmt = select(registered_models.c.name).where(*conditions).order_by(*terms)
    return _page(stmt, max_results, offset)


def model_version_search_select(
    filter_string: str | None,
    order_by: Sequence[str] | None,
    max_results: int | None = None,
    offset: int = 0,
    dialect: str | None = None,
) -> Select[Any]:
    """``SELECT model_versions.name, model_versions.version`` for one page of a search."""
    del dialect
    checks = Checks(filter_string or "")
    clauses = parse_filter(filter_string)
    prompts = _wants_prompts(clauses)
    mv = model_versions.c
    conditions = [mv.lifecycle_stage == "active"]
    conditions += [
        _version_condition(c, checks) for c in clauses if prompts or not _is_prompt_clause(c)
    ]
    if not prompts:
        conditions.append(_not_a_prompt(mv.name))
    terms, seen = _ordering(list(order_by or VERSION_DEFAULT_ORDER), model_versions, VERSION_ORDER)
    if "name" not in seen:
        terms.append(mv.name.asc())
    if "version" not in seen:
        terms.append(mv.version.desc())
    stmt = select(mv.name, mv.version).where(*conditions).order_by(*terms)
    return _page(stmt, max_results, offset)


__all__ = ["PROMPT_TAG", "model_version_search_select", "registered_model_search_select"]
