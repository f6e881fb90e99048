"""The data behind the studio's experiments list and runs table.

The runs table must stay fast at 10,000 runs, so it never loads an
experiment's runs: the run search's own SQL (:func:`run_search_select`, the
statement ``TrackingService.search_runs`` runs, with MLflow's filter and
order_by grammar and its page tokens) picks one page of run ids, and then
only the columns on screen are read for those ids — the run's own fields, the
chosen params and the chosen metrics' latest values (``latest_metrics``, one
row per run and key, never the history). The column chooser's key lists are
two ``DISTINCT`` reads over the experiment's params and series.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from lapis.entities.tracking import Experiment, RunStatus
from lapis.errors import InvalidParameterValue
from lapis.store.sql.tables import latest_metrics, params, runs
from lapis.tracking.search.grammar import parse_order_by
from lapis.tracking.search.paging import decode_page_token, encode_page_token
from lapis.tracking.search.runs import run_search_select

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE = 50
DEFAULT_COLUMNS = 3  # metrics and params each, when the URL chooses none
MAX_KEYS = 500
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_\-/]+$")

# Attribute columns the table shows, with the order_by field a header click sorts by.
ATTRIBUTE_COLUMNS = (
    ("Run", "attributes.run_name"),
    ("Status", "attributes.status"),
    ("Started", "attributes.start_time"),
    ("Duration", None),
    ("User", "attributes.user_id"),
)


def quote_key(key: str) -> str:
    """A key as the grammar reads it: bare when plain, back-ticked otherwise."""
    return key if _PLAIN_KEY.match(key) else f"`{key}`"


def column_field(column: str) -> str:
    """``metrics.my key`` → ``metrics.`my key``` (for order_by)."""
    entity, _, key = column.partition(".")
    return f"{entity}.{quote_key(key)}"


@dataclass
class RunsQuery:
    """What the URL asks for: filter, sort, columns, status chip, page."""

    filter: str = ""
    order_by: str = ""
    columns: list[str] = field(default_factory=list)
    chosen: bool = False  # the URL names columns (even none); else defaults are shown
    status: str = ""
    page_token: str = ""
    page_size: int = DEFAULT_PAGE

    def full_filter(self) -> str:
        parts = [self.filter.strip()] if self.filter.strip() else []
        if self.status:
            parts.append(f"attributes.status = '{self.status}'")
        return " and ".join(parts)

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        """Query parameters of this view with ``changes`` applied (None drops one)."""
        values: dict[str, Any] = {
            "filter": self.filter,
            "order_by": self.order_by,
            "status": self.status,
            "page_token": "",
            "max": "" if self.page_size == DEFAULT_PAGE else str(self.page_size),
            "col": self.columns if self.chosen else None,
        }
        values.update(changes)
        out: list[tuple[str, str]] = []
        for name, value in values.items():
            if name == "col":
                if value is not None:
                    out += [("cols", "1")] + [("col", c) for c in value]
            elif value:
                out.append((name, str(value)))
        return out


def parse_query(
    filter: str,
    order_by: str,
    col: Sequence[str],
    cols: str,
    status: str,
    page_token: str,
    max_results: int | None,
) -> RunsQuery:
    if status and status not in {s.value for s in RunStatus}:
        raise InvalidParameterValue(
            f"Unknown run status '{status}'; expected one of "
            f"{', '.join(s.value for s in RunStatus)}"
        )
    size = max_results or DEFAULT_PAGE
    if size not in PAGE_SIZES:
        raise InvalidParameterValue(
            f"max must be one of {', '.join(map(str, PAGE_SIZES))} (got {size})"
        )
    chosen = bool(cols) or bool(col)
    columns = [c for c in dict.fromkeys(col) if c.partition(".")[0] in ("metrics", "params")]
    return RunsQuery(filter, order_by, columns, chosen, status, page_token, size)


def experiment_keys(conn: Any, experiment_id: int) -> dict[str, list[str]]:
    """The param and metric keys logged by the experiment's active runs (for the chooser)."""
    in_exp = (
        select(runs.c.run_uuid)
        .where(runs.c.experiment_id == experiment_id, runs.c.lifecycle_stage == "active")
        .scalar_subquery()
    )
    out: dict[str, list[str]] = {}
    for name, table in (("metrics", latest_metrics), ("params", params)):
        stmt = (
            select(table.c.key)
            .where(table.c.run_uuid.in_(in_exp))
            .distinct()
            .order_by(table.c.key)
            .limit(MAX_KEYS)
        )
        out[name] = [str(k) for k in conn.execute(stmt).scalars()]
    return out


def experiment_stats(conn: Any) -> dict[int, tuple[int, int | None]]:
    """Active run count and newest run start per experiment."""
    rows = conn.execute(
        select(runs.c.experiment_id, func.count(), func.max(runs.c.start_time))
        .where(runs.c.lifecycle_stage == "active")
        .group_by(runs.c.experiment_id)
    ).all()
    return {int(e): (int(n), last) for e, n, last in rows}


@dataclass
class RunsPage:
    rows: list[dict[str, Any]]
    columns: list[str]
    keys: dict[str, list[str]]
    offset: int
    next_token: str | None
    prev_token: str | None
    error: str | None = None


def shown_columns(query: RunsQuery, keys: dict[str, list[str]]) -> list[str]:
    if query.chosen:
        return query.columns
    metric_cols = [f"metrics.{k}" for k in keys["metrics"][:DEFAULT_COLUMNS]]
    return metric_cols + [f"params.{k}" for k in keys["params"][:DEFAULT_COLUMNS]]


def runs_page(db: Any, experiment: Experiment, query: RunsQuery) -> RunsPage:
    """One page of the runs table; a filter or order_by error becomes ``error``."""
    exp_id = int(experiment.experiment_id)
    with db.read() as conn:
        keys = experiment_keys(conn, exp_id)
        columns = shown_columns(query, keys)
        try:
            offset = decode_page_token(query.page_token or None)
            stmt = run_search_select(
                [exp_id],
                query.full_filter(),
                [query.order_by] if query.order_by.strip() else [],
                "ACTIVE_ONLY",
                query.page_size + 1,
                offset,
            )
            ids = [str(i) for i in conn.execute(stmt).scalars()]
        except InvalidParameterValue as exc:
            return RunsPage([], columns, keys, 0, None, None, exc.message)
        more = len(ids) > query.page_size
        ids = ids[: query.page_size]
        rows = _rows(conn, ids, columns)
    return RunsPage(
        rows=rows,
        columns=columns,
        keys=keys,
        offset=offset,
        next_token=encode_page_token(offset + query.page_size) if more else None,
        prev_token=(encode_page_token(max(0, offset - query.page_size)) if offset > 0 else None),
    )


def _rows(conn: Any, ids: list[str], columns: list[str]) -> list[dict[str, Any]]:
    """The shown columns of the runs ``ids``, in that order."""
    if not ids:
        return []
    r = runs.c
    by_id: dict[str, dict[str, Any]] = {}
    for row in conn.execute(
        select(
            r.run_uuid, r.name, r.status, r.start_time, r.end_time, r.user_id, r.created_by
        ).where(r.run_uuid.in_(ids))
    ):
        by_id[row.run_uuid] = {
            "run_id": row.run_uuid,
            "name": row.name,
            "status": row.status,
            "start_time": row.start_time,
            "end_time": row.end_time,
            "user": row.created_by or row.user_id,
            "values": {},
        }
    param_keys = [c.partition(".")[2] for c in columns if c.startswith("params.")]
    metric_keys = [c.partition(".")[2] for c in columns if c.startswith("metrics.")]
    if param_keys:
        for run_uuid, key, value in conn.execute(
            select(params.c.run_uuid, params.c.key, params.c.value).where(
                params.c.run_uuid.in_(ids), params.c.key.in_(param_keys)
            )
        ):
            by_id[run_uuid]["values"][f"params.{key}"] = value
    if metric_keys:
        lm = latest_metrics.c
        for run_uuid, key, value, is_nan in conn.execute(
            select(lm.run_uuid, lm.key, lm.value, lm.is_nan).where(
                lm.run_uuid.in_(ids), lm.key.in_(metric_keys)
            )
        ):
            by_id[run_uuid]["values"][f"metrics.{key}"] = float("nan") if is_nan else value
    return [by_id[i] for i in ids if i in by_id]


def sort_state(order_by: str) -> tuple[str, bool] | None:
    """(field, ascending) of the current order, or None when unsorted or unreadable."""
    if not order_by.strip():
        return None
    try:
        entity, key, ascending = parse_order_by(order_by)
    except InvalidParameterValue:
        return None
    return f"{entity}.{key}", ascending


__all__ = [
    "ATTRIBUTE_COLUMNS",
    "PAGE_SIZES",
    "RunsPage",
    "RunsQuery",
    "column_field",
    "experiment_keys",
    "experiment_stats",
    "parse_query",
    "runs_page",
    "sort_state",
]
