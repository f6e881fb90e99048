"""Filtering and ordering logged models in Python.

An experiment holds tens of models, not millions of points, so evaluating the
filter on entities keeps attribute, param, tag and metric conditions on one
code path. The filter text is parsed by the shared search grammar.
"""

from __future__ import annotations

import fnmatch
import math
from typing import Any

from lapis.entities.tracking import LoggedModel
from lapis.errors import InvalidParameterValue

_ATTRS = {
    "name": "name",
    "model_id": "model_id",
    "model_type": "model_type",
    "status": "status",
    "source_run_id": "source_run_id",
    "creation_timestamp": "creation_timestamp",
    "creation_time": "creation_timestamp",
    "last_updated_timestamp": "last_updated_timestamp",
}


def _value(model: LoggedModel, kind: str, key: str) -> Any:
    if kind == "metric":
        points = [m for m in model.metrics if m.key == key]
        if not points:
            return None
        return max(points, key=lambda m: (m.step, m.timestamp)).value
    if kind == "param":
        return model.params.get(key)
    if kind == "tag":
        return model.tags.get(key)
    attr = _ATTRS.get(key)
    if attr is None:
        raise InvalidParameterValue(
            f"Invalid attribute '{key}' in logged model filter; expected one of "
            f"{', '.join(sorted(_ATTRS))}"
        )
    value = getattr(model, attr)
    if attr == "status" and isinstance(value, str):
        return value
    return value


def _like(value: str, pattern: str, case: bool) -> bool:
    glob = pattern.replace("[", "[[]").replace("%", "*").replace("_", "?")
    if not case:
        value, glob = value.lower(), glob.lower()
    return fnmatch.fnmatchcase(value, glob)


def compare(actual: Any, op: str, expected: Any) -> bool:
    """One filter clause against a value, by MLflow's rules for in-memory search."""
    if op in ("IS NULL", "IS NOT NULL"):
        return (actual is None) == (op == "IS NULL")
    if actual is None:
        return False
    if isinstance(actual, float) and math.isnan(actual):
        return False
    if op in ("IN", "NOT IN"):
        found = str(actual) in {str(x) for x in expected}
        return found if op == "IN" else not found
    if op in ("LIKE", "ILIKE"):
        return _like(str(actual), str(expected), op == "LIKE")
    if isinstance(actual, int | float) and not isinstance(actual, bool):
        try:
            exp: Any = float(expected)
        except (TypeError, ValueError):
            return False
    else:
        actual, exp = str(actual), str(expected)
    result: bool = {
        "=": actual == exp,
        "!=": actual != exp,
        "<": actual < exp,
        "<=": actual <= exp,
        ">": actual > exp,
        ">=": actual >= exp,
    }[op]
    return result


def metric_clauses(filter_string: str) -> bool:
    """Whether the filter compares any metric (``metrics.acc > 0.9``)."""
    if not filter_string.strip():
        return False
    from lapis.tracking.search.grammar import parse_filter

    return any(c.entity == "metrics" for c in parse_filter(filter_string))


def matches(model: LoggedModel, filter_string: str) -> bool:
    if not filter_string.strip():
        return True
    from lapis.tracking.search.grammar import parse_filter

    for clause in parse_filter(filter_string):
        kind = {"metrics": "metric", "params": "param", "tags": "tag"}.get(
            clause.entity, "attribute"
        )
        if not compare(_value(model, kind, clause.key), clause.op, clause.value):
            return False
    return True


def sort_key(model: LoggedModel, field: str) -> tuple[int, Any]:
    """Missing values sort last whichever the direction, as MLflow orders them."""
    kind, _, key = field.partition(".")
    if not key:
        kind, key = "attribute", kind
    kind = {"metrics": "metric", "params": "param", "tags": "tag"}.get(kind, "attribute")
    value = _value(model, kind, key)
    return (1, 0) if value is None else (0, value)
