"""The native log body (columnar metrics plus params and tags), checked in one place.

Used by ``POST /api/v1/runs/{id}/log`` and by the job finalizer replaying what a job
spooled to disk while the server was away — both must accept exactly the same
bodies. Checked by hand rather than through a pydantic model: at 100,000 points a
request, model validation would cost more than the database insert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lapis.errors import InvalidParameterValue
from lapis.tracking.mlflow_compat import float_in

INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True, slots=True)
class LogBody:
    keys: list[str]
    values: list[float]
    steps: list[int]
    timestamps: list[int]
    params: dict[str, Any]
    tags: dict[str, Any]


def parse_log_body(body: dict[str, Any]) -> LogBody:
    unknown = set(body) - {"metrics", "params", "tags"}
    if unknown:
        raise InvalidParameterValue(
            f"Unknown field(s) in log request: {', '.join(sorted(unknown))}"
        )
    m = body.get("metrics") or {}
    if not isinstance(m, dict):
        raise InvalidParameterValue("metrics must be an object of four lists")
    cols: dict[str, list[Any]] = {}
    for name in ("key", "value", "step", "timestamp"):
        col = m.get(name, [])
        if not isinstance(col, list):
            raise InvalidParameterValue(f"metrics.{name} must be a list")
        cols[name] = col
    values = cols["value"]
    if not all(type(x) is float or type(x) is int for x in values):
        values = [float_in(x, f"metrics.value[{i}]") for i, x in enumerate(values)]
    if not all(type(x) is int for x in cols["step"]) or not all(
        type(x) is int for x in cols["timestamp"]
    ):
        raise InvalidParameterValue("metrics.step and metrics.timestamp must be lists of integers")
    for name in ("step", "timestamp"):
        col = cols[name]
        if col and (min(col) < INT64[0] or max(col) > INT64[1]):
            raise InvalidParameterValue(
                f"metrics.{name} holds a value that does not fit in 64 bits"
            )
    if not all(type(x) is str for x in cols["key"]):
        raise InvalidParameterValue("metrics.key must be a list of strings")
    params, tags = body.get("params") or {}, body.get("tags") or {}
    if not isinstance(params, dict) or not isinstance(tags, dict):
        raise InvalidParameterValue("params and tags must be JSON objects")
    return LogBody(cols["key"], values, cols["step"], cols["timestamp"], params, tags)
