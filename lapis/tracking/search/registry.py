"""Registry search: registered models and model versions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, select

from lapis.errors import InvalidParameterValue
from lapis.store.sql.tables import (
    model_version_tags,
    model_versions,
    registered_model_tags,
    registered_models,
)
from lapis.tracking.search.grammar import Clause, parse_filter, parse_order_by
from lapis.tracking.search.sql import NUMERIC_OPS, STRING_OPS, check_op, compare, numeric, string

_MODEL_ORDER = {
    "name": "name",
    "creation_timestamp": "creation_time",
    "last_updated_timestamp": "last_updated_time",
    "timestamp": "last_updated_time",
}
_VERSION_ORDER = {
    "name": "name",
    "version_number": "version",
    "version": "version",
    "creation_timestamp": "creation_time",
    "last_updated_timestamp": "last_updated_time",
}


PROMPT_TAG = "mlflow.prompt.is_prompt"


def _wants_prompts(clauses: list[Clause]) -> bool:
    """MLflow keeps prompts and models in one registry; the client hides prompts by adding
    ``tags.`mlflow.prompt.is_prompt` != 'true'`` to every model search. Models carry no
    such tag, so that clause is read as "not a prompt" rather than "tag present"."""
    return any(
        c.entity == "tags"
        and c.key == PROMPT_TAG
        and ((c.op == "=" and c.value == "true") or (c.op == "!=" and c.value == "false"))
        for c in clauses
    )


def _model_condition(c: Clause, dialect: str) -> ColumnElement[bool]:
    if c.entity == "tags":
        check_op(c.op, STRING_OPS, f"tag '{c.key}'")
        return exists().where(
            registered_model_tags.c.name == registered_models.c.name,
            registered_model_tags.c.key == c.key,
            compare(registered_model_tags.c.value, c.op, string(c.value, c.key, c.op), dialect),
        )
    if c.entity == "attributes" and c.key == "name":
        check_op(c.op, STRING_OPS, "attribute 'name'")
        return compare(registered_models.c.name, c.op, string(c.value, "name", c.op), dialect)
    raise InvalidParameterValue(
        f"Invalid registered model filter key '{c.key}'; expected name or tags.<key>"
    )


def _version_condition(c: Clause, dialect: str) -> ColumnElement[bool]:
    mv = model_versions.c
    if c.entity == "tags":
        check_op(c.op, STRING_OPS, f"tag '{c.key}'")
        t = model_version_tags.c
        return exists().where(
            t.name == mv.name,
            t.version == mv.version,
            t.key == c.key,
            compare(t.value, c.op, string(c.value, c.key, c.op), dialect),
        )
    if c.entity != "attributes":
        raise InvalidParameterValue(f"Invalid model version filter entity '{c.entity}'")
    if c.key in ("name", "source_path", "source"):
        check_op(c.op, STRING_OPS, f"attribute '{c.key}'")
        col = mv.name if c.key == "name" else mv.source
        return compare(col, c.op, string(c.value, c.key, c.op), dialect)
    if c.key == "run_id":
        check_op(c.op, ("=", "!=", "IN", "NOT IN"), "attribute 'run_id'")
        return compare(mv.run_id, c.op, string(c.value, c.key, c.op), dialect)
    if c.key in ("version_number", "version"):
        check_op(c.op, NUMERIC_OPS, f"attribute '{c.key}'")
        value = c.value if isinstance(c.value, float) else numeric(_num(c.value), c.key)
        return compare(mv.version, c.op, int(value), dialect)
    raise InvalidParameterValue(
        f"Invalid model version filter key '{c.key}'; expected name, run_id, source_path, "
        "version_number or tags.<key>"
    )


def _num(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _ordering(order_by: list[str] | None, table: Any, allowed: dict[str, str]) -> list[Any]:
    out = []
    for text in order_by or []:
        o = parse_order_by(text)
        if o.entity != "attributes" or o.key not in allowed:
            raise InvalidParameterValue(
                f"Invalid order_by key '{text}'; expected one of {', '.join(allowed)}"
            )
        col = table.c[allowed[o.key]]
        out.append(col.asc() if o.ascending else col.desc())
    return out


def registered_model_search_select(
    filter_string: str,
    order_by: list[str] | None,
    max_results: int,
    offset: int,
    dialect: str = "sqlite",
) -> Select[Any]:
    clauses = parse_filter(filter_string)
    prompts = _wants_prompts(clauses)
    conditions = [
        _model_condition(c, dialect)
        for c in clauses
        if prompts or not (c.entity == "tags" and c.key == PROMPT_TAG)
    ]
    if not prompts:
        t = registered_model_tags.c
        conditions.append(
            ~exists().where(
                t.name == registered_models.c.name, t.key == PROMPT_TAG, t.value == "true"
            )
        )
    ordering = _ordering(order_by, registered_models, _MODEL_ORDER)
    ordering.append(registered_models.c.name.asc())
    stmt = select(registered_models.c.name).where(and_(True, *conditions))
    return stmt.order_by(*ordering).limit(max_results).offset(offset)


def model_version_search_select(
    filter_string: str,
    order_by: list[str] | None,
    max_results: int,
    offset: int,
    dialect: str = "sqlite",
) -> Select[Any]:
    clauses = parse_filter(filter_string)
    prompts = _wants_prompts(clauses)
    conditions = [
        _version_condition(c, dialect)
        for c in clauses
        if prompts or not (c.entity == "tags" and c.key == PROMPT_TAG)
    ]
    conditions.append(model_versions.c.lifecycle_stage == "active")
    if not prompts:
        t = registered_model_tags.c
        conditions.append(
            ~exists().where(t.name == model_versions.c.name, t.key == PROMPT_TAG, t.value == "true")
        )
    ordering = _ordering(order_by, model_versions, _VERSION_ORDER)
    if not order_by:
        ordering.append(model_versions.c.last_updated_time.desc())
    ordering += [model_versions.c.name.asc(), model_versions.c.version.desc()]
    stmt = select(model_versions.c.name, model_versions.c.version).where(and_(*conditions))
    return stmt.order_by(*ordering).limit(max_results).offset(offset)
