"""What every CLI command shares: output format, connection, time and table rendering.

People get Rich tables; scripts pass ``--output json`` (globally or per
command) and get one JSON document on stdout — or ``yaml``, or ``tsv`` by
Azure CLI's rules, after ``--query`` (a JMESPath expression, as ``az`` takes)
picked what they need: ``lapis online-endpoint show -n ep --query scoring_uri -o tsv``.
Commands branch only on "table or not": :func:`output_format` answers ``json``
for every machine format and :func:`print_json` writes the one asked for.
``--query`` is read from the command line before Typer parses it (see
``lapis.cli.main``), so every command takes it. Times are stored as UTC epoch
milliseconds and shown in the viewer's local time zone.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_type_hints

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lapis.errors import InvalidParameterValue
from lapis.sdk.connection import LapisHTTP, resolve


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    yaml = "yaml"
    tsv = "tsv"
    none = "none"


MACHINE = (OutputFormat.json, OutputFormat.yaml, OutputFormat.tsv, OutputFormat.none)


@dataclass
class Rendering:
    """How machine output is written: the format asked for and the ``--query`` expression."""

    format: OutputFormat = OutputFormat.json
    query: str | None = None


RENDER = Rendering()  # one command per process: set by main() and output_format()


@dataclass
class CliState:
    """Global options, kept on the Typer context by the root callback."""

    output: OutputFormat = OutputFormat.table
    home: Path | None = None


OutputOption = Annotated[
    OutputFormat | None,
    typer.Option(
        "--output",
        "-o",
        help="table for people; json, yaml, tsv (Azure CLI's rules) or none for scripts. "
        "--query JMESPATH picks from the answer first, as in az (default output then json).",
        show_default=False,
    ),
]


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def output_format(ctx: typer.Context, given: OutputFormat | None) -> OutputFormat:
    """``table``, or ``json`` for every machine format (the one asked for is kept for
    :func:`print_json`); with ``--query`` and no ``-o``, json, as ``az`` does."""
    fmt = given if given is not None else state(ctx).output
    if fmt is OutputFormat.table and RENDER.query is not None:
        if given is None:  # --query alone: json, as az does
            fmt = OutputFormat.json
        else:  # -o table --query: a table of what the query picked
            RENDER.format = OutputFormat.table
            return OutputFormat.json
    if fmt in MACHINE:
        RENDER.format = fmt
        return OutputFormat.json
    return fmt


def client(ctx: typer.Context) -> LapisHTTP:
    """A client for the server the global ``--home`` (or the environment) points at."""
    home = state(ctx).home
    return resolve(home=home, prefer_home=home is not None).client()


_NAME_HEADERS = {"name", "job", "run", "run id", "experiment"}


def keep_names_whole(table: Table) -> Table:
    """A table's name column is never wrapped or cut, even at 80 columns: a name is what
    users copy into the next command, so the other columns give up the width instead."""
    for index, column in enumerate(table.columns):
        if index and str(column.header).strip().lower() not in _NAME_HEADERS:
            continue
        widths = [_cell_len(c) for c in column._cells]
        column.no_wrap = True
        column.overflow = "ignore"
        column.min_width = max([len(str(column.header)), *widths])
    return table


def _cell_len(cell: object) -> int:
    if isinstance(cell, Text):
        return cell.cell_len
    if isinstance(cell, str):
        return Text.from_markup(cell).cell_len
    return len(str(cell))


class _Console(Console):
    """Rich's console, keeping tables' name columns whole (``keep_names_whole``)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        for obj in objects:
            if isinstance(obj, Table):
                keep_names_whole(obj)
        super().print(*objects, **kwargs)


def console() -> Console:
    """stdout console; wide when piped so tables are not cut to 80 columns."""
    return _Console(width=None if sys.stdout.isatty() else 200, soft_wrap=False)


def print_json(data: Any) -> None:
    """Write ``data`` (after ``--query``) as the machine format asked for."""
    if RENDER.query is not None:
        data = run_query(RENDER.query, data)
    if RENDER.format is OutputFormat.none:
        return
    if RENDER.format is OutputFormat.table:
        console().print(query_table(data))
        return
    if RENDER.format is OutputFormat.yaml:
        import yaml

        plain = json.loads(json.dumps(data, default=str))
        sys.stdout.write(yaml.safe_dump(plain, sort_keys=False, allow_unicode=True))
    elif RENDER.format is OutputFormat.tsv:
        sys.stdout.write("".join(line + "\n" for line in tsv_lines(data)))
    else:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def query_table(data: Any) -> Table:
    """What ``--query`` picked, as a table: a list of objects one row each, columns from
    their keys; a list of scalars one column; an object two (key, value)."""
    from rich.markup import escape

    def text(value: Any) -> str:
        return escape(
            ""
            if value is None
            else value
            if isinstance(value, str)
            else json.dumps(value, default=str)
        )

    table = Table(box=None, pad_edge=False)
    if isinstance(data, list) and data and all(isinstance(d, dict) for d in data):
        columns = list(dict.fromkeys(k for d in data for k in d))
        for column in columns:
            table.add_column(str(column), overflow="fold")
        for d in data:
            table.add_row(*(text(d.get(c)) for c in columns))
    elif isinstance(data, list):
        table.add_column("Result", overflow="fold")
        for item in data:
            table.add_row(text(item))
    elif isinstance(data, dict):
        table.add_column("Key")
        table.add_column("Value", overflow="fold")
        for key, value in data.items():
            table.add_row(escape(str(key)), text(value))
    else:
        table.add_column("Result", overflow="fold")
        table.add_row(text(data))
    return table


def run_query(expression: str, data: Any) -> Any:
    """JMESPath over the answer, as ``az --query`` runs it (a bad expression: one line)."""
    import jmespath
    from jmespath.exceptions import JMESPathError

    from lapis.errors import InvalidParameterValue

    try:
        return jmespath.search(expression, json.loads(json.dumps(data, default=str)))
    except JMESPathError as exc:
        reason = " ".join(str(exc).split())
        raise InvalidParameterValue(f"--query '{expression}': {reason}") from None


def tsv_lines(data: Any) -> list[str]:
    """Azure CLI's tsv: a list gives one line per item, anything else one line; a line
    is a scalar bare, or an object's (or list's) values joined by tabs, in order — a
    value that is itself a list written as its length, an object as nothing, null as
    nothing, booleans as ``True``/``False``."""

    def cell(value: Any) -> str:
        if value is None or isinstance(value, dict):
            return ""
        if isinstance(value, list):
            return str(len(value))
        if isinstance(value, bool):
            return "True" if value else "False"
        return str(value)

    def line(value: Any) -> str:
        if isinstance(value, dict):
            return "\t".join(cell(v) for v in value.values())
        if isinstance(value, list):
            return "\t".join(cell(v) for v in value)
        return cell(value)

    return [line(item) for item in data] if isinstance(data, list) else [line(data)]


SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Set a key before sending, as az ml --set does (repeatable; dotted paths, YAML "
        "values): --set description=nightly --set defaults.deployment_name=blue",
    ),
]


def apply_sets(doc: dict[str, Any], sets: list[str] | None) -> dict[str, Any]:
    """``--set a.b=value`` into ``doc`` (in place; returned for convenience)."""
    from lapis.specs.job import apply_overrides

    apply_overrides(doc, sets or [])
    return doc


WebOption = Annotated[
    bool,
    typer.Option("--web", help="Open the studio's page for it (the URL is printed on stderr)."),
]


def open_web(http: LapisHTTP, page: str) -> None:
    """Say where the studio shows ``page`` and, where there is a display, open it."""
    import os
    import webbrowser
    from urllib.parse import quote

    url = http.url + quote(page)
    Console(stderr=True, highlight=False).print(f"Studio: {url}", markup=False)
    if sys.platform == "darwin" or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        webbrowser.open(url)


YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
NoWaitOption = Annotated[
    bool,
    typer.Option(
        "--no-wait",
        help="Accepted as az ml scripts pass it; this operation is done when the command "
        "returns, which is at once.",
    ),
]


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


F = TypeVar("F", bound=Callable[..., Any])


def named(param: str = "name", what: str = "resource") -> Callable[[F], F]:
    """Let a command take its resource's name as ``--name/-n`` as well as positionally,
    as ``az ml`` scripts write it: ``lapis online-endpoint show -n my-ep`` and
    ``lapis online-endpoint show my-ep`` do the same.

    Rewrites the command's signature before Typer reads it: the positional ``param``
    becomes optional and a ``--name``/``-n`` option is added; the command itself still
    receives one ``param`` (whichever was given; both must agree).
    """

    def wrap(fn: F) -> F:
        sig = inspect.signature(fn)
        hints = get_type_hints(fn, include_extras=True)
        help_text = None
        for meta in getattr(hints[param], "__metadata__", ()):
            help_text = getattr(meta, "help", None) or help_text
        positional = inspect.Parameter(
            param,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=None,
            annotation=Annotated[
                str | None,
                typer.Argument(
                    help=(help_text or f"The {what}'s name") + " (or give it with --name/-n).",
                    show_default=False,
                ),
            ],
        )
        option = inspect.Parameter(
            "name_option",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                str | None,
                typer.Option(
                    "--name",
                    "-n",
                    help=f"The {what}'s name (as az ml takes it).",
                    show_default=False,
                ),
            ],
        )
        params = [
            positional if p.name == param else p.replace(annotation=hints.get(p.name, p.annotation))
            for p in sig.parameters.values()
        ]
        # Typer passes everything by keyword; keyword-only keeps the order Python accepts
        # whatever mix of defaults the command has (the context stays first).
        params = [
            p if p.annotation is typer.Context else p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for p in params
        ]
        params.append(option)

        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            given, by_option = kwargs.pop(param, None), kwargs.pop("name_option", None)
            if given and by_option and given != by_option:
                raise InvalidParameterValue(
                    f"two names given: '{given}' and --name '{by_option}'; give one"
                )
            value = given or by_option
            if not value:
                raise InvalidParameterValue(
                    f"give the {what}'s name: positionally or with --name/-n"
                )
            return fn(*args, **{param: value}, **kwargs)

        annotations = {**hints, param: positional.annotation, "name_option": option.annotation}
        command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = annotations
        return command  # type: ignore[return-value]

    return wrap
