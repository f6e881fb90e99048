"""Compare 2 to 10 runs: overlaid metric charts and a param/metric diff table.

``/compare?runs=a,b`` (or ``runs=a&runs=b``, what the runs table's checkboxes
send). The diff table has a row per param and per metric key and a column
per run; rows whose values differ (a missing value differs from any value)
are marked, and ``?diff=1`` — or the page's toggle, without a reload — shows
only those. The charts read each run's downsampled series from the same JSON
route as the run page and draw one chart per metric key logged by at least
two of the runs (all keys when no key is shared), one line per run.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.entities.tracking import Run
from lapis.errors import InvalidParameterValue, ResourceDoesNotExist
from lapis.server.studio.web import render

router = APIRouter(include_in_schema=False)

MIN_RUNS, MAX_RUNS = 2, 10


def _ids(values: list[str]) -> list[str]:
    ids = list(dict.fromkeys(i.strip() for v in values for i in v.split(",") if i.strip()))
    if not MIN_RUNS <= len(ids) <= MAX_RUNS:
        raise InvalidParameterValue(
            f"Pick between {MIN_RUNS} and {MAX_RUNS} runs to compare (got {len(ids)})"
        )
    return ids


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def diff_rows(runs: list[Run]) -> list[dict[str, Any]]:
    """Rows of (kind, key, shown values per run, differs) for params then metrics."""
    rows: list[dict[str, Any]] = []
    per_run_metrics = [{m.key: m.value for m in r.metrics} for r in runs]
    sources: list[tuple[str, list[dict[str, Any]]]] = [
        ("param", [r.params for r in runs]),
        ("metric", per_run_metrics),
    ]
    for kind, maps in sources:
        for key in sorted({k for m in maps for k in m}):
            shown = [_fmt(m[key]) if key in m else None for m in maps]
            rows.append({"kind": kind, "key": key, "values": shown, "differs": len(set(shown)) > 1})
    return rows


def chart_keys(runs: list[Run]) -> list[str]:
    counts: dict[str, int] = {}
    for r in runs:
        for k in {m.key for m in r.metrics}:
            counts[k] = counts.get(k, 0) + 1
    shared = sorted(k for k, n in counts.items() if n >= 2)
    return shared or sorted(counts)


@router.get("/compare")
async def compare(
    request: Request,
    runs: list[str] = Query(default_factory=list),
    diff: str = "",
) -> Response:
    ws = request.app.state.ws
    ids = _ids(runs)

    def gather() -> list[Run]:
        found = ws.tracking.runs.get_many(ids)
        missing = [i for i in ids if i not in {r.info.run_id for r in found}]
        if missing:
            raise ResourceDoesNotExist(f"No run with id {', '.join(missing)}")
        return list(found)

    found = await run_in_threadpool(gather)
    names = [r.info.run_name or r.info.run_id for r in found]
    keys = chart_keys(found)
    ctx = {
        "runs": found,
        "names": names,
        "rows": diff_rows(found),
        "only_diff": diff in ("1", "true", "on"),
        "ids_param": ",".join(ids),
        "chart_config": {
            "runs": [{"id": r.info.run_id, "name": n} for r, n in zip(found, names, strict=True)],
            "keys": keys,
            "seriesUrl": "/ui/runs/{run}/metric-series",
        },
    }
    return render(request, "runs/compare.html", ctx, section="experiments")
