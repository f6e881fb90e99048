"""Experiment search: ``name LIKE 'team-%' AND tags.owner = 'ana'`` to a SELECT of ids.

Follows MLflow's SqlAlchemyStore: attributes ``name``, ``experiment_id``,
``creation_time`` and ``last_update_time``, plus ``tags.<key>``; the default
order is ``creation_time DESC, experiment_id ASC``, and an explicit order
that leaves out ``experiment_id`` gets ``experiment_id DESC`` as tiebreak,
exactly as MLflow appends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, select

from lapis.store.sql.tables import experiment_tags, experiments
from lapis.tracking.search.checks import KEY_VALUE_OPS, NUMERIC_OPS, STRING_OPS, Checks
from lapis.tracking.search.grammar import Clause, invalid, parse_filter, parse_order_by
from lapis.tracking.search.runs import stages_for
from lapis.tracking.search.sql import compare

NUMERIC_KEYS = ("creation_time", "last_update_time")
ORDER_KEYS = ("name", "experiment_id", *NUMERIC_KEYS)
DEFAULT_ORDER = ("creation_time DESC", "experiment_id ASC")


def _experiment_ids(c: Clause, checks: Checks) -> int | list[int]:
    """MLflow compares experiment ids as quoted strings; numbers are accepted too."""
    raw = c.value if isinstance(c.value, list) else [c.value]
    ids: list[int] = []
    for item in raw:
        text = str(item)
        if not text.isdigit():
            raise checks.fail(c, f"invalid experiment id {item!r}", "expected digits", True)
        ids.append(int(text))
    return ids if isinstance(c.value, list) else ids[0]


def _condition(c: Clause, checks: Checks) -> ColumnElement[bool]:
    checks.entity(c, ("attributes", "tags"), "experiments")
    if c.entity == "tags":
        checks.op(c, KEY_VALUE_OPS)
        t = experiment_tags.c
        where = [t.experiment_id == experiments.c.experiment_id, t.key == c.key]
        if c.op == "IS NULL":
            return ~exists().where(*where)
        if c.op == "IS NOT NULL":
            return exists().where(*where)
        return exists().where(*where, compare(t.value, c.op, checks.string(c)))
    if c.key == "name":
        checks.op(c, STRING_OPS)
        return compare(experiments.c.name, c.op, checks.string(c))
    if c.key == "experiment_id":
        checks.op(c, ("=", "!=", "IN", "NOT IN"))
        return compare(experiments.c.experiment_id, c.op, _experiment_ids(c, checks))
    if c.key in NUMERIC_KEYS:
        checks.op(c, NUMERIC_OPS)
        return compare(experiments.c[c.key], c.op, checks.number(c))
    raise checks.unknown_key(c, ORDER_KEYS)


def _ordering(order_by: Sequence[str]) -> list[Any]:
    terms: list[Any] = []
    seen: set[str] = set()
    for text in order_by or DEFAULT_ORDER:
        entity, key, ascending = parse_order_by(text)
        if entity != "attributes" or key not in ORDER_KEYS:
            raise invalid(
                text,
                f"cannot order experiments by {key if entity == 'attributes' else entity}",
                None,
                "order_by clause",
                f"expected one of {', '.join(ORDER_KEYS)}",
            )
        if key in seen:
            raise invalid(text, "duplicate order_by field", None, "order_by clause")
        seen.add(key)
        column = experiments.c[key]
        terms.append(column.asc() if ascending else column.desc())
    if "experiment_id" not in seen:
        terms.append(experiments.c.experiment_id.desc())
    return terms


def experiment_search_select(
    filter_string: str | None,
    order_by: Sequence[str] | None,
    view_type: object = "ACTIVE_ONLY",
    max_results: int | None = None,
    offset: int = 0,
    dialect: str | None = None,
) -> Select[Any]:
    """``SELECT experiments.experiment_id`` for one page of an MLflow experiment search.

    ``dialect`` is accepted for callers that pass it and ignored.
    """
    del dialect
    checks = Checks(filter_string or "")
    conditions = [experiments.c.lifecycle_stage.in_(stages_for(view_type))]
    conditions += [_condition(c, checks) for c in parse_filter(filter_string)]
    stmt = (
        select(experiments.c.experiment_id)
        .where(*conditions)
        .order_by(*_ordering(list(order_by or [])))
    )
    if max_results is not None:
        stmt = stmt.limit(max_results)
    if offset:
        stmt = stmt.offset(offset)
    return stmt


__all__ = ["experiment_search_select"]
