"""What every CLI command shares: output format, connection, time and table rendering.

People get Rich tables; scripts pass ``--output json`` (globally or per
command) and get one JSON document on stdout. Times are stored as UTC epoch
milliseconds and shown in the viewer's local time zone.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from lapis.sdk.connection import LapisHTTP, resolve


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


@dataclass
class CliState:
    """Global options, kept on the Typer context by the root callback."""

    output: OutputFormat = OutputFormat.table
    home: Path | None = None


OutputOption = Annotated[
    OutputFormat | None,
    typer.Option("--output", "-o", help="table for people, json for scripts.", show_default=False),
]


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def output_format(ctx: typer.Context, given: OutputFormat | None) -> OutputFormat:
    return given if given is not None else state(ctx).output


def client(ctx: typer.Context) -> LapisHTTP:
    """A client for the server the global ``--home`` (or the environment) points at."""
    home = state(ctx).home
    return resolve(home=home, prefer_home=home is not None).client()


def console() -> Console:
    """stdout console; wide when piped so tables are not cut to 80 columns."""
    return Console(width=None if sys.stdout.isatty() else 200, soft_wrap=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def delete_and_report(
    ctx: typer.Context, what: str, path: str, yes: bool, output: OutputFormat | None
) -> None:
    """Ask (unless ``--yes``), DELETE ``path``, then print the answer or ``Deleted <what>.``

    Without a terminal and without ``--yes`` the question reads end-of-input and
    the command stops with exit 1, so a script never deletes by accident.
    """
    if not yes:
        typer.confirm(f"Delete {what}?", abort=True)
    with client(ctx) as http:
        body = http.request("DELETE", path).json()
    if output_format(ctx, output) is OutputFormat.json:
        print_json(body)
        return
    console().print(f"Deleted {what}.", markup=False)


def fmt_time(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(start: int | None, end: int | None) -> str:
    if not start or not end:
        return "-"
    secs = max(0, (end - start) // 1000)
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


STATUS_STYLE = {
    "RUNNING": "cyan",
    "SCHEDULED": "blue",
    "FINISHED": "green",
    "FAILED": "red",
    "KILLED": "yellow",
}
