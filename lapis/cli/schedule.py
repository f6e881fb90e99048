"""``lapis schedule …``: jobs submitted on a cron or recurrence trigger, as ``az ml
schedule`` manages them. ``create`` reads the job file the schedule names and uploads
its code, as ``lapis job create`` does; the schedule then submits it, as its creator,
once per tick — never twice, across restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from lapis.cli._common import (
    OutputFormat,
    OutputOption,
    client,
    console,
    fmt_time,
    keep_names_whole,
    named,
    output_format,
    print_json,
)
from lapis.sdk import schedules as sdk_schedules

app = typer.Typer(help="Job schedules: jobs submitted on a cron or recurrence trigger.",
                  no_args_is_help=True)  # fmt: skip


def _when(s: dict[str, Any]) -> str:
    trigger = s.get("trigger") or {}
    if str(trigger.get("type", "")).lower() == "cron":
        return f"cron '{trigger.get('expression')}' ({s['time_zone']})"
    return f"every {trigger.get('interval', 1)} {trigger.get('frequency')} ({s['time_zone']})"


def _show(s: dict[str, Any], fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        print_json(s)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan")
    grid.add_column()
    rows = [
        ("Name", s["name"] + ("" if s["is_enabled"] else "  (disabled)")),
        ("Trigger", _when(s)),
        ("Runs", s.get("create_job") or "-"),
        ("Next run", fmt_time(s["next_run"]) if s.get("next_run") else "-"),
        ("Last job", s.get("last_job") or "-"),
        ("Created", f"{fmt_time(s['created_at'])} by {s.get('created_by') or '-'}"),
    ]
    if s.get("last_error"):
        rows.append(("Last error", s["last_error"]))
    for label, value in rows:
        grid.add_row(label, escape(str(value)))
    console().print(grid)


@app.command("create")
def create(
    ctx: typer.Context,
    file: Annotated[Path, typer.Option("--file", "-f", help="A schedule YAML file.")],
    output: OutputOption = None,
) -> None:
    """Create a schedule (or update one of the same name) from Azure's schedule YAML."""
    with client(ctx) as http:
        made = sdk_schedules.create(http, file)
    _show(made, output_format(ctx, output))


@app.command("list")
def list_schedules(ctx: typer.Context, output: OutputOption = None) -> None:
    """Every schedule, with its trigger, next run and last job."""
    with client(ctx) as http:
        found = http.get("/api/v1/schedules")["schedules"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(found)
        return
    table = keep_names_whole(Table(title="Schedules", title_justify="left"))
    for col in ("Name", "State", "Trigger", "Next run", "Last job"):
        table.add_column(col)
    for s in found:
        table.add_row(s["name"], "enabled" if s["is_enabled"] else "disabled", escape(_when(s)),
                      fmt_time(s["next_run"]) if s.get("next_run") else "-",
                      escape(s.get("last_job") or "-"))  # fmt: skip
    console().print(table)


@app.command("show")
@named(what="schedule")
def show(ctx: typer.Context, name: str, output: OutputOption = None) -> None:
    """One schedule and the jobs it submitted."""
    with client(ctx) as http:
        found = http.get(sdk_schedules.path_of(name))
        jobs = http.get(f"{sdk_schedules.path_of(name)}/jobs")["jobs"]
    fmt = output_format(ctx, output)
    if fmt is OutputFormat.json:
        print_json({**found, "jobs": jobs})
        return
    _show(found, fmt)
    for j in jobs[:10]:
        console().print(f"  {escape(j['name'])}  {j['status']}  {fmt_time(j['created_at'])}")


def _switch(ctx: typer.Context, name: str, verb: str, output: OutputFormat | None) -> None:
    with client(ctx) as http:
        found = http.post(f"{sdk_schedules.path_of(name)}/{verb}", {})
    _show(found, output_format(ctx, output))


@app.command("enable")
@named(what="schedule")
def enable(ctx: typer.Context, name: str, output: OutputOption = None) -> None:
    """Start firing again (ticks missed while disabled are not made up for)."""
    _switch(ctx, name, "enable", output)


@app.command("disable")
@named(what="schedule")
def disable(ctx: typer.Context, name: str, output: OutputOption = None) -> None:
    """Stop firing; jobs already submitted run on."""
    _switch(ctx, name, "disable", output)


@app.command("delete")
@named(what="schedule")
def delete(ctx: typer.Context, name: str) -> None:
    """Delete a schedule; the jobs it submitted stay."""
    with client(ctx) as http:
        http.request("DELETE", sdk_schedules.path_of(name))
    console().print(f"Deleted schedule {name}.", markup=False)
