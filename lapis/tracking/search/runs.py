"""Run search: MLflow filter and order_by strings to one SELECT of run ids.

Every filter clause becomes a correlated ``EXISTS`` (or a plain column test
for attributes), so clauses never multiply rows, need no DISTINCT, and both
databases run each as an index probe on the ``(run_uuid, key)`` primary key
per candidate run of the chosen experiments. Metric clauses read
``latest_metrics``, one row per run and key, so a run with a million points
costs what a run with one does.

Semantics follow MLflow's SqlAlchemyStore, with these choices:

* A clause on a metric, param or tag the run lacks is false, ``!=`` included.
* A NaN metric matches no numeric comparison, ``!=`` included (MLflow lets
  NaN satisfy ``!=``; a NaN is not a value anyone filters for).
* ``run_name`` is the ``runs.name`` column (MLflow reads the mlflow.runName tag).
* ``IN`` / ``NOT IN`` work on every string attribute, params and tags (MLflow:
  run_id and datasets only), ``IS [NOT] NULL`` on params and tags.
* Ordering puts missing values last in both directions; for a metric, NaN
  sorts after every number and before missing. Ties fall back to
  ``start_time DESC`` (unless already ordered by it), then ``run_uuid``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, false, select, true
from sqlalchemy.sql import FromClause

from lapis.errors import InvalidParameterValue
from lapis.store.sql.tables import datasets, latest_metrics, params, run_inputs, runs, tags
from lapis.tracking.search.checks import KEY_VALUE_OPS, NUMERIC_OPS, STRING_OPS, Checks
from lapis.tracking.search.grammar import Clause, invalid, parse_filter, parse_order_by
from lapis.tracking.search.sql import compare, dataset_context, ordered

VIEW_STAGES: dict[str, tuple[str, ...]] = {
    "ACTIVE_ONLY": ("active",),
    "DELETED_ONLY": ("deleted",),
    "ALL": ("active", "deleted"),
}

NUMERIC_ATTRIBUTES = {
    "start_time": "start_time",
    "end_time": "end_time",
    "created": "start_time",
    "Created": "start_time",
}
STRING_ATTRIBUTES = {
    "run_id": "run_uuid",
    "run_name": "name",
    "run name": "name",
    "Run name": "name",
    "Run Name": "name",
    "status": "status",
    "user_id": "user_id",
    "artifact_uri": "artifact_uri",
    "lifecycle_stage": "lifecycle_stage",
}
ORDER_ATTRIBUTES = {**NUMERIC_ATTRIBUTES, **STRING_ATTRIBUTES, "experiment_id": "experiment_id"}
DATASET_KEYS = ("name", "digest", "context")
_KEY_VALUE_TABLES = {"params": params, "tags": tags}


def stages_for(view_type: object) -> tuple[str, ...]:
    """Lifecycle stages for a view type given as ``ViewType`` or its name."""
    name = str(getattr(view_type, "value", view_type) or "ACTIVE_ONLY").upper()
    stages = VIEW_STAGES.get(name)
    if stages is None:
        raise InvalidParameterValue(
            f"Invalid view type '{view_type}'; expected one of {', '.join(VIEW_STAGES)}"
        )
    return stages


def _metric(c: Clause, checks: Checks) -> ColumnElement[bool]:
    checks.op(c, NUMERIC_OPS)
    lm = latest_metrics.c
    return exists().where(
        lm.run_uuid == runs.c.run_uuid,
        lm.key == c.key,
        lm.is_nan == false(),
        compare(lm.value, c.op, float(checks.number(c))),
    )


def _key_value(c: Clause, checks: Checks) -> ColumnElement[bool]:
    checks.op(c, KEY_VALUE_OPS)
    table = _KEY_VALUE_TABLES[c.entity]
    where = [table.c.run_uuid == runs.c.run_uuid, table.c.key == c.key]
    if c.op == "IS NULL":
        return ~exists().where(*where)
    if c.op == "IS NOT NULL":
        return exists().where(*where)
    return exists().where(*where, compare(table.c.value, c.op, checks.string(c)))


def _dataset(c: Clause, checks: Checks) -> ColumnElement[bool]:
    if c.key not in DATASET_KEYS:
        raise checks.unknown_key(c, DATASET_KEYS)
    checks.op(c, STRING_OPS)
    target = dataset_context(run_inputs.c.tags_json) if c.key == "context" else datasets.c[c.key]
    return exists().where(
        run_inputs.c.run_uuid == runs.c.run_uuid,
        datasets.c.dataset_uuid == run_inputs.c.dataset_uuid,
        compare(target, c.op, checks.string(c)),
    )


def _attribute(c: Clause, checks: Checks) -> ColumnElement[bool]:
    if c.key in NUMERIC_ATTRIBUTES:
        checks.op(c, NUMERIC_OPS)
        return compare(runs.c[NUMERIC_ATTRIBUTES[c.key]], c.op, checks.number(c))
    if c.key in STRING_ATTRIBUTES:
        checks.op(c, STRING_OPS)
        return compare(runs.c[STRING_ATTRIBUTES[c.key]], c.op, checks.string(c))
    known = sorted({*NUMERIC_ATTRIBUTES, *STRING_ATTRIBUTES} - {"Created", "Run name", "Run Name"})
    raise checks.unknown_key(c, known)


_BUILDERS = {
    "metrics": _metric,
    "params": _key_value,
    "tags": _key_value,
    "datasets": _dataset,
    "attributes": _attribute,
}


def run_filter_conditions(filter_string: str | None) -> list[ColumnElement[bool]]:
    """WHERE conditions over ``runs`` for an MLflow filter string (none when empty)."""
    checks = Checks(filter_string or "")
    return [_BUILDERS[c.entity](c, checks) for c in parse_filter(filter_string)]


def _order_terms(order_by: Sequence[str], from_: FromClause) -> tuple[list[Any], FromClause, bool]:
    """ORDER BY terms, the FROM with the outer joins they need, and whether start_time is used."""
    terms: list[Any] = []
    seen: set[tuple[str, str]] = set()
    for n, text in enumerate(order_by):
        entity, key, ascending = parse_order_by(text)
        if entity == "attributes" and key in ORDER_ATTRIBUTES:
            column = ORDER_ATTRIBUTES[key]
            ident = (entity, column)
            terms.append(ordered(runs.c[column], ascending))
        elif entity in ("metrics", "params", "tags"):
            ident = (entity, key)
            table = latest_metrics if entity == "metrics" else _KEY_VALUE_TABLES[entity]
            joined = table.alias(f"order_{n}")
            on = and_(joined.c.run_uuid == runs.c.run_uuid, joined.c.key == key)
            from_ = from_.outerjoin(joined, on)
            if entity == "metrics":
                # Numbers first, then NaN (stored as 0 with is_nan set), then missing.
                rank = case((joined.c.is_nan == true(), 1), (joined.c.value.is_(None), 2), else_=0)
                terms.append(rank.asc())
            terms.append(ordered(joined.c.value, ascending))
        else:
            known = ", ".join(sorted(set(ORDER_ATTRIBUTES) - {"Created", "Run name", "Run Name"}))
            raise invalid(
                text,
                f"cannot order runs by {entity}.{key}",
                None,
                "order_by clause",
                f"expected metrics.<key>, params.<key>, tags.<key> or one of {known}",
            )
        if ident in seen:
            raise invalid(text, "duplicate order_by field", None, "order_by clause")
        seen.add(ident)
    return terms, from_, ("attributes", "start_time") in seen


def run_search_select(
    experiment_ids: Sequence[int],
    filter_string: str | None,
    order_by: Sequence[str] | None,
    view_type: object = "ACTIVE_ONLY",
    max_results: int | None = None,
    offset: int = 0,
    dialect: str | None = None,
) -> Select[Any]:
    """``SELECT runs.run_uuid`` for one page of an MLflow run search, in MLflow's order.

    ``view_type`` is ``"ACTIVE_ONLY"``, ``"DELETED_ONLY"`` or ``"ALL"`` (or the
    ``ViewType`` enum). ``dialect`` is accepted for callers that pass it and
    ignored: the statement compiles correctly for SQLite and PostgreSQL alike.
    """
    del dialect
    conditions: list[ColumnElement[bool]] = [
        runs.c.experiment_id.in_([int(e) for e in experiment_ids]),
        runs.c.lifecycle_stage.in_(stages_for(view_type)),
        *run_filter_conditions(filter_string),
    ]
    terms, from_, has_start = _order_terms(list(order_by or []), runs)
    if not has_start:
        terms.append(ordered(runs.c.start_time, False))
    terms.append(runs.c.run_uuid.asc())
    stmt = select(runs.c.run_uuid).select_from(from_).where(*conditions).order_by(*terms)
    if max_results is not None:
        stmt = stmt.limit(max_results)
    if offset:
        stmt = stmt.offset(offset)
    return stmt


__all__ = ["VIEW_STAGES", "run_filter_conditions", "run_search_select", "stages_for"]
