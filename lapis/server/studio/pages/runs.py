"""Experiments and their runs table: filter, sort, choose columns, page, pick runs to compare.

Every view is a plain URL (``/experiments/7?filter=…&order_by=…&col=…``) that
renders the whole page on the server, so a link reproduces what its sender
saw. htmx makes the same requests from the filter form, the headers and the
pager and swaps only ``#runs-view`` (the route answers an htmx request with
that fragment), pushing the URL into the history. A filter the grammar
rejects is shown as the parser's message under the box, with an empty table.
The data side (one page of ids from the run search's SQL, then only the
shown columns) is in :mod:`lapis.server.studio.runs_query`.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.entities.tracking import RunStatus
from lapis.server.studio.web import is_htmx, render
from lapis.tracking import run_table as rq

router = APIRouter(include_in_schema=False)


@router.get("/experiments")
async def experiments(request: Request) -> Response:
    ws = request.app.state.ws

    def gather() -> dict[str, Any]:
        exps, _ = ws.tracking.search_experiments(max_results=50_000)
        stats = ws.tracking.experiment_stats()
        items = []
        for e in exps:
            count, last_run = stats.get(int(e.experiment_id), (0, None))
            items.append(
                {"e": e, "runs": count, "last": max(last_run or 0, e.last_update_time or 0)}
            )
        items.sort(key=lambda i: i["last"], reverse=True)
        return {"items": items}

    return render(
        request, "runs/experiments.html", await run_in_threadpool(gather), section="experiments"
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None else str(value)


@router.get("/experiments/{experiment_id}")
async def experiment_runs(
    request: Request,
    experiment_id: str,
    filter: str = "",
    order_by: str = "",
    col: list[str] = Query(default_factory=list),
    cols: str = "",
    status: str = "",
    page_token: str = "",
    max: int | None = None,
) -> Response:
    ws = request.app.state.ws
    query = rq.parse_query(filter, order_by, col, cols, status, page_token, max)

    def gather() -> dict[str, Any]:
        exp = ws.tracking.get_experiment(experiment_id)
        traces = ws.traces.counts([int(exp.experiment_id)]).get(int(exp.experiment_id), 0)
        return {"experiment": exp, "page": ws.tracking.runs_page(exp, query), "trace_count": traces}

    data = await run_in_threadpool(gather)
    exp = data["experiment"]
    base = f"/experiments/{exp.experiment_id}"

    def url(**changes: Any) -> str:
        qs = urlencode(query.params(**changes))
        return f"{base}?{qs}" if qs else base

    sort = rq.sort_state(order_by)

    def sort_link(field_: str) -> tuple[str, str | None]:
        """(URL, aria-sort) of a header: first click descending for metrics, then toggles."""
        current = None
        if sort is not None and sort[0] == field_.replace("`", ""):
            current = "ascending" if sort[1] else "descending"
        if current == "descending":
            target = f"{field_} ASC"
        elif current == "ascending":
            target = f"{field_} DESC"
        else:
            ascending = field_.startswith(("attributes.run_name", "attributes.user_id"))
            target = f"{field_} {'ASC' if ascending else 'DESC'}"
        return url(order_by=target), current

    ctx = {
        "experiment": exp,
        "q": query,
        "page": data["page"],
        "trace_count": data["trace_count"],
        "url": url,
        "sort_link": sort_link,
        "column_field": rq.column_field,
        "attribute_columns": rq.ATTRIBUTE_COLUMNS,
        "statuses": [s.value for s in RunStatus],
        "page_sizes": rq.PAGE_SIZES,
        "cell": _cell,
    }
    if is_htmx(request) and request.headers.get("hx-target") == "runs-view":
        return render(request, "runs/_runs_view.html", ctx)
    status_code = 400 if data["page"].error else 200
    return render(request, "runs/runs.html", ctx, section="experiments", status=status_code)
