"""``lapis experiment …``: look at the workspace's experiments."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer
from rich.table import Table

from lapis.cli._common import (
    OutputFormat,
    OutputOption,
    client,
    console,
    fmt_time,
    output_format,
    print_json,
)

app = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)


class View(str, Enum):
    active = "active"
    deleted = "deleted"
    all = "all"


@app.command("list")
def list_experiments(
    ctx: typer.Context,
    view: Annotated[View, typer.Option(help="Which experiments to show.")] = View.active,
    output: OutputOption = None,
) -> None:
    """List experiments, newest first."""
    with client(ctx) as http:
        exps = http.get("/api/v1/experiments", view=view.value)["experiments"]
    exps.sort(key=lambda e: (e.get("creation_time") or 0, int(e["experiment_id"])), reverse=True)
    if output_format(ctx, output) is OutputFormat.json:
        print_json(exps)
        return
    table = Table(title=f"Experiments ({view.value})", title_justify="left")
    table.add_column("ID", justify="right", style="bold")
    table.add_column("Name")
    if view is not View.active:
        table.add_column("Stage")
    table.add_column("Created")
    table.add_column("Updated")
    table.add_column("Artifact location", overflow="fold", style="dim")
    for e in exps:
        row = [e["experiment_id"], e["name"]]
        if view is not View.active:
            row.append(e["lifecycle_stage"])
        row += [
            fmt_time(e.get("creation_time")),
            fmt_time(e.get("last_update_time")),
            e.get("artifact_location") or "",
        ]
        table.add_row(*row)
    if not exps:
        console().print(f"No {view.value} experiments.")
        return
    console().print(table)
