"""``lapis run …``: list runs, show one, summarise its metrics."""

from __future__ import annotations

import math
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table
from rich.text import Text

from lapis.cli._common import (
    STATUS_STYLE,
    OutputFormat,
    OutputOption,
    WebOption,
    client,
    console,
    fmt_duration,
    fmt_time,
    fmt_value,
    open_web,
    output_format,
    print_json,
)
from lapis.sdk.connection import LapisHTTP

app = typer.Typer(
    help="Runs: one execution of training code and what it logged.", no_args_is_help=True
)

PAGE = 1000  # runs per request when --max-results asks for more


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def _fetch_runs(
    http: LapisHTTP, experiment: str | None, filter_: str, order_by: str | None, limit: int
) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    token: str | None = None
    while len(runs) < limit:
        page = http.get(
            "/api/v1/runs",
            experiment=experiment,
            filter=filter_ or None,
            order_by=order_by,
            max_results=min(PAGE, limit - len(runs)),
            page_token=token,
        )
        runs.extend(page["runs"])
        token = page.get("next_page_token")
        if not token:
            break
    return runs


@app.command("list")
def list_runs(
    ctx: typer.Context,
    experiment: Annotated[
        str | None, typer.Option("--experiment", "-e", help="Experiment name or id (default: all).")
    ] = None,
    filter_: Annotated[
        str,
        typer.Option(
            "--filter",
            "-f",
            help="MLflow filter, e.g. \"metrics.acc > 0.9 and params.lr = '0.1'\".",
        ),
    ] = "",
    order_by: Annotated[
        str | None,
        typer.Option("--order-by", help="e.g. 'metrics.acc DESC' or 'attributes.start_time'."),
    ] = None,
    max_results: Annotated[int, typer.Option("--max-results", "-n", min=1)] = 100,
    output: OutputOption = None,
) -> None:
    """List runs, newest first unless --order-by says otherwise."""
    with client(ctx) as http:
        runs = _fetch_runs(http, experiment, filter_, order_by, max_results)
        names: dict[str, str] = {}
        if runs:
            exps = http.get("/api/v1/experiments", view="all")["experiments"]
            names = {e["experiment_id"]: e["name"] for e in exps}
    if output_format(ctx, output) is OutputFormat.json:
        print_json(runs)
        return
    if not runs:
        console().print("No runs" + (f" in experiment '{experiment}'." if experiment else "."))
        return
    table = Table(title=f"Runs ({len(runs)})", title_justify="left")
    table.add_column("Run ID", style="bold", no_wrap=True)
    table.add_column("Name")
    table.add_column("Experiment")
    table.add_column("Status")
    table.add_column("Started")
    table.add_column("Duration", justify="right")
    table.add_column("User")
    table.add_column("Metrics (latest)", overflow="fold")
    for r in runs:
        metrics = r.get("metrics") or {}
        shown = ", ".join(f"{k}={fmt_value(m['value'])}" for k, m in sorted(metrics.items())[:4])
        if len(metrics) > 4:
            shown += f", … (+{len(metrics) - 4})"
        table.add_row(
            r["run_id"],
            r.get("run_name") or "",
            names.get(r["experiment_id"], r["experiment_id"]),
            _status(r["status"]),
            fmt_time(r.get("start_time")),
            fmt_duration(r.get("start_time"), r.get("end_time")),
            r.get("user_id") or "",
            shown,
        )
    console().print(table)


@app.command("show")
def show(
    ctx: typer.Context, run_id: str, web: WebOption = False, output: OutputOption = None
) -> None:
    """Show one run: its attributes, params, latest metrics and tags."""
    with client(ctx) as http:
        r = http.get(f"/api/v1/runs/{quote(run_id, safe='')}")
        if web:
            open_web(http, f"/runs/{r['run_id']}")
        try:
            exp_name = http.get(f"/api/v1/experiments/{r['experiment_id']}")["name"]
        except Exception:
            exp_name = None
    if output_format(ctx, output) is OutputFormat.json:
        print_json(r)
        return
    out = console()
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    exp = f"{exp_name} (id {r['experiment_id']})" if exp_name else r["experiment_id"]
    rows: list[tuple[str, str | Text]] = [
        ("Run", r["run_id"]),
        ("Name", r.get("run_name") or ""),
        ("Experiment", exp),
        ("Status", _status(r["status"])),
        ("Started", fmt_time(r.get("start_time"))),
        ("Ended", fmt_time(r.get("end_time"))),
        ("Duration", fmt_duration(r.get("start_time"), r.get("end_time"))),
        ("User", r.get("user_id") or ""),
        ("Artifacts", r.get("artifact_uri") or ""),
    ]
    if r.get("lifecycle_stage") != "active":
        rows.append(("Lifecycle", r.get("lifecycle_stage") or ""))
    for k, v in rows:
        info.add_row(k, v)
    out.print(info)
    _kv_table(out, "Params", r.get("params") or {})
    metrics = r.get("metrics") or {}
    if metrics:
        t = Table(title="Metrics (latest)", title_justify="left")
        t.add_column("Key")
        t.add_column("Value", justify="right")
        t.add_column("Step", justify="right")
        t.add_column("Time")
        for k, m in sorted(metrics.items()):
            t.add_row(k, fmt_value(m["value"]), str(m["step"]), fmt_time(m["timestamp"]))
        out.print(t)
    tags = r.get("tags") or {}
    _kv_table(out, "Tags", {k: v for k, v in tags.items() if not k.startswith("mlflow.")})
    system = {k: v for k, v in tags.items() if k.startswith("mlflow.")}
    _kv_table(out, "System tags", system, style="dim")


def _kv_table(out: Any, title: str, data: dict[str, Any], style: str = "") -> None:
    if not data:
        return
    t = Table(title=title, title_justify="left", style=style)
    t.add_column("Key")
    t.add_column("Value", overflow="fold")
    for k, v in sorted(data.items()):
        t.add_row(k, str(v), style=style)
    out.print(t)


def _num(v: Any) -> float:
    if isinstance(v, int | float):
        return float(v)
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(str(v), math.nan)


def summarise(
    key: str, latest: dict[str, Any], points: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """One row of ``lapis run metrics``: the latest point, plus history statistics if fetched."""
    row: dict[str, Any] = {
        "key": key,
        "value": latest["value"],
        "step": latest["step"],
        "timestamp": latest["timestamp"],
    }
    if points is not None:
        values = [x for x in (_num(p["value"]) for p in points) if not math.isnan(x)]
        row["count"] = len(points)
        row["min"] = min(values) if values else None
        row["max"] = max(values) if values else None
        row["first_step"] = min((p["step"] for p in points), default=None)
        row["last_step"] = max((p["step"] for p in points), default=None)
    return row


@app.command("metrics")
def metrics(
    ctx: typer.Context,
    run_id: str,
    key: Annotated[
        list[str] | None, typer.Option("--key", "-k", help="Only these metric keys (repeatable).")
    ] = None,
    latest_only: Annotated[
        bool,
        typer.Option("--latest-only", help="Skip the history (no count/min/max): one request."),
    ] = False,
    output: OutputOption = None,
) -> None:
    """Each metric's latest value, step and time, with count, min and max over its history."""
    with client(ctx) as http:
        run = http.get(f"/api/v1/runs/{quote(run_id, safe='')}")
        latest: dict[str, Any] = run.get("metrics") or {}
        keys = sorted(latest) if not key else [k for k in key if k in latest]
        missing = [k for k in key or [] if k not in latest]
        rows = []
        for k in keys:
            points = None
            if not latest_only:
                path = f"/api/v1/runs/{quote(run_id, safe='')}/metrics/{quote(k)}/history"
                points = http.get(path)["points"]
            rows.append(summarise(k, latest[k], points))
    if missing:
        from lapis.errors import ResourceDoesNotExist

        raise ResourceDoesNotExist(f"run {run_id} has no metric named {', '.join(missing)}")
    if output_format(ctx, output) is OutputFormat.json:
        print_json(rows)
        return
    if not rows:
        console().print(f"Run {run_id} has no metrics.")
        return
    t = Table(title=f"Metrics of run {run_id}", title_justify="left")
    t.add_column("Key", style="bold")
    t.add_column("Latest", justify="right")
    t.add_column("Step", justify="right")
    t.add_column("Time")
    if not latest_only:
        for col in ("Count", "Min", "Max"):
            t.add_column(col, justify="right")
    for row in rows:
        cells = [row["key"], fmt_value(row["value"]), str(row["step"]), fmt_time(row["timestamp"])]
        if not latest_only:
            cells += [
                f"{row['count']:,}",
                "-" if row["min"] is None else fmt_value(row["min"]),
                "-" if row["max"] is None else fmt_value(row["max"]),
            ]
        t.add_row(*cells)
    console().print(t)
