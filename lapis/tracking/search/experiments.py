"""Experiment search: ``name LIKE 'team-%' and tags.owner = 'ana'``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, select

from lapis.errors import InvalidParameterValue
from lapis.store.sql.tables import experiment_tags, experiments
from lapis.tracking.search.grammar import Clause, parse_filter, parse_order_by
from lapis.tracking.search.sql import NUMERIC_OPS, STRING_OPS, check_op, compare, numeric, string

_STAGES = {"ACTIVE_ONLY": ("active",), "DELETED_ONLY": ("deleted",), "ALL": ("active", "deleted")}
_NUMERIC = ("creation_time", "last_update_time")
_ORDERABLE = ("name", "experiment_id", *_NUMERIC)


def _condition(c: Clause, dialect: str) -> ColumnElement[bool]:
    if c.entity == "tags":
        check_op(c.op, STRING_OPS, f"tag '{c.key}'")
        return exists().where(
            experiment_tags.c.experiment_id == experiments.c.experiment_id,
            experiment_tags.c.key == c.key,
            compare(experiment_tags.c.value, c.op, string(c.value, c.key, c.op), dialect),
        )
    if c.entity == "attributes" and c.key == "name":
        check_op(c.op, STRING_OPS, "attribute 'name'")
        return compare(experiments.c.name, c.op, string(c.value, "name", c.op), dialect)
    if c.entity == "attributes" and c.key in _NUMERIC:
        check_op(c.op, NUMERIC_OPS, f"attribute '{c.key}'")
        return compare(experiments.c[c.key], c.op, numeric(c.value, c.key), dialect)
    raise InvalidParameterValue(
        f"Invalid experiment filter key '{c.key}'; expected name, creation_time, "
        "last_update_time or tags.<key>"
    )


def experiment_search_select(
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
    conditions = [experiments.c.lifecycle_stage.in_(stages)]
    conditions += [_condition(c, dialect) for c in parse_filter(filter_string)]
    ordering = []
    keys = set()
    for text in order_by or ["creation_time DESC", "experiment_id ASC"]:
        o = parse_order_by(text)
        if o.entity != "attributes" or o.key not in _ORDERABLE:
            raise InvalidParameterValue(
                f"Invalid order_by key '{text}'; expected one of {', '.join(_ORDERABLE)}"
            )
        col = experiments.c[o.key]
        keys.add(o.key)
        ordering.append(col.asc() if o.ascending else col.desc())
    if "experiment_id" not in keys:
        ordering.append(experiments.c.experiment_id.asc())
    stmt = select(experiments.c.experiment_id).where(and_(*conditions)).order_by(*ordering)
    return stmt.limit(max_results).offset(offset)
