"""Run search: filter, order and page runs in SQL.

Metric conditions compare against ``latest_metrics`` (one row per run and
key), so a filter over a million points costs what a filter over a thousand
does. Each condition is an EXISTS subquery, which both databases turn into an
index probe per candidate run.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, select

from lapis.errors import InvalidParameterValue
from lapis.store.sql.tables import datasets, latest_metrics, params, run_inputs, runs, tags
from lapis.tracking.search.grammar import Clause, parse_filter, parse_order_by
from lapis.tracking.search.sql import NUMERIC_OPS, STRING_OPS, check_op, compare, numeric, string

_STAGES = {"ACTIVE_ONLY": ("active",), "DELETED_ONLY": ("deleted",), "ALL": ("active", "deleted")}
_NUMERIC_ATTRS = {"start_time": "start_time", "end_time": "end_time", "created": "start_time"}
_STRING_ATTRS = {
    "status": "status",
    "run_name": "name",
    "run name": "name",
    "user_id": "user_id",
    "artifact_uri": "artifact_uri",
    "lifecycle_stage": "lifecycle_stage",
    "run_id": "run_uuid",
}
_ORDER_ATTRS = {**_NUMERIC_ATTRS, **_STRING_ATTRS, "experiment_id": "experiment_id"}


def _attribute(c: Clause, dialect: str) -> ColumnElement[bool]:
    key = c.key.lower() if c.key.lower() in ("run name",) else c.key
    if key in _NUMERIC_ATTRS:
        check_op(c.op, NUMERIC_OPS, f"attribute '{c.key}'")
        return compare(runs.c[_NUMERIC_ATTRS[key]], c.op, numeric(c.value, c.key), dialect)
    if key in _STRING_ATTRS:
        allowed = STRING_OPS + (("IN", "NOT IN") if key == "run_id" else ())
        check_op(c.op, allowed, f"attribute '{c.key}'")
        return compare(runs.c[_STRING_ATTRS[key]], c.op, string(c.value, c.key, c.op), dialect)
    known = ", ".join(sorted(set(_NUMERIC_ATTRS) | set(_STRING_ATTRS)))
    raise InvalidParameterValue(f"Invalid attribute key '{c.key}'; expected one of {known}")


def _condition(c: Clause, dialect: str) -> ColumnElement[bool]:
    run = runs.c.run_uuid
    if c.entity == "metrics":
        check_op(c.op, NUMERIC_OPS, f"metric '{c.key}'")
        lm = latest_metrics.c
        return exists().where(
            lm.run_uuid == run,
            lm.key == c.key,
            lm.is_nan.is_(False),
            compare(lm.value, c.op, numeric(c.value, f"metric '{c.key}'"), dialect),
        )
    if c.entity in ("params", "tags"):
        table = params if c.entity == "params" else tags
        allowed = STRING_OPS + (("IN", "NOT IN") if c.entity == "tags" else ())
        check_op(c.op, allowed, f"{c.entity[:-1]} '{c.key}'")
        value = string(c.value, f"{c.entity[:-1]} '{c.key}'", c.op)
        return exists().where(
            table.c.run_uuid == run,
            table.c.key == c.key,
            compare(table.c.value, c.op, value, dialect),
        )
    if c.entity == "datasets":
        check_op(c.op, (*STRING_OPS, "IN", "NOT IN"), f"dataset '{c.key}'")
        value = string(c.value, f"dataset '{c.key}'", c.op)
        if c.key in ("name", "digest"):
            target = datasets.c[c.key]
        elif c.key == "context":
            target = run_inputs.c.tags_json
            if c.op == "=":
                return exists().where(run_inputs.c.run_uuid == run, target.contains(f'"{value}"'))
        else:
            raise InvalidParameterValue(
                f"Invalid dataset key '{c.key}'; expected name, digest or context"
            )
        return exists().where(
            run_inputs.c.run_uuid == run,
            datasets.c.dataset_uuid == run_inputs.c.dataset_uuid,
            compare(target, c.op, value, dialect),
        )
    return _attribute(c, dialect)


def _order_column(text: str) -> tuple[Any, bool]:
    o = parse_order_by(text)
    if o.entity == "metrics":
        lm = latest_metrics.c
        col = (
            select(lm.value)
            .where(lm.run_uuid == runs.c.run_uuid, lm.key == o.key, lm.is_nan.is_(False))
            .scalar_subquery()
        )
    elif o.entity in ("params", "tags"):
        table = params if o.entity == "params" else tags
        col = (
            select(table.c.value)
            .where(table.c.run_uuid == runs.c.run_uuid, table.c.key == o.key)
            .scalar_subquery()
        )
    elif o.entity == "attributes" and o.key in _ORDER_ATTRS:
        col = runs.c[_ORDER_ATTRS[o.key]]
    else:
        raise InvalidParameterValue(
            f"Invalid order_by key '{text}'; expected metrics.<key>, params.<key>, tags.<key> "
            f"or one of {', '.join(sorted(_ORDER_ATTRS))}"
        )
    return col, o.ascending


def run_search_select(
    experiment_ids: list[int],
    filter_string: str,
    order_by: list[str] | None,
    view_type: str,
    max_results: int,
    offset: int,
    dialect: str = "sqlite",
) -> Select[Any]:
    stages = _STAGES.get(view_type.upper())
    if stages is None:
        raise InvalidParameterValue(f"Invalid view type '{view_type}'")
    conditions = [runs.c.experiment_id.in_(experiment_ids), runs.c.lifecycle_stage.in_(stages)]
    conditions += [_condition(c, dialect) for c in parse_filter(filter_string)]
    stmt = select(runs.c.run_uuid).where(and_(*conditions))
    ordering = []
    for text in order_by or []:
        col, ascending = _order_column(text)
        ordering.append((col.asc() if ascending else col.desc()).nulls_last())
    ordering += [runs.c.start_time.desc(), runs.c.run_uuid.asc()]
    return stmt.order_by(*ordering).limit(max_results).offset(offset)
