"""``lapis component …``: versioned command components, as ``az ml component`` manages
them. ``create`` uploads the component's code as a snapshot first; creating a version
that exists with the same content answers that version, so a script may run it again."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

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
from lapis.sdk import components as sdk_components

app = typer.Typer(
    help="Components: reusable, versioned command steps for pipelines.",
    no_args_is_help=True,
)
VersionOption = Annotated[
    str | None, typer.Option("--version", "-v", help="A version (default: the latest).")
]


def _path(name: str) -> str:
    return f"/api/v1/components/{quote(name, safe='')}"


def _io(items: list[dict[str, Any]]) -> str:
    parts = []
    for i in items:
        extra = []
        if i.get("default") is not None:
            extra.append(f"default {i['default']}")
        if i.get("optional"):
            extra.append("optional")
        if i.get("min") is not None or i.get("max") is not None:
            extra.append(f"{i.get('min', '')}..{i.get('max', '')}")
        if i.get("enum"):
            extra.append("one of " + "|".join(i["enum"]))
        parts.append(f"{i['name']}: {i['type']}" + (f" ({', '.join(extra)})" if extra else ""))
    return "\n".join(parts) or "-"


def _show(c: dict[str, Any], fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        print_json(c)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan")
    grid.add_column()
    rows = [
        ("Name", f"{c['name']}:{c['version']}" + ("  (archived)" if c.get("archived") else "")),
        ("Display name", c.get("display_name") or "-"),
        ("Description", c.get("description") or "-"),
        ("Deterministic", "yes" if c["is_deterministic"] else "no (never reused)"),
        ("Environment", c["environment"]),
        ("Code", f"snapshot {c['code'][:12]}" if c.get("code") else "-"),
        ("Inputs", _io(c["inputs"])),
        ("Outputs", _io(c["outputs"])),
        ("Command", c["command"]),
        ("Tags", ", ".join(f"{k}={v}" for k, v in c.get("tags", {}).items()) or "-"),
        ("Created", f"{fmt_time(c['created_at'])} by {c.get('created_by') or '-'}"),
    ]
    for label, value in rows:
        grid.add_row(label, escape(value))
    console().print(grid)


@app.command("create")
def create(
    ctx: typer.Context,
    file: Annotated[Path, typer.Option("--file", "-f", help="A command component YAML file.")],
    output: OutputOption = None,
) -> None:
    """Register a component version from Azure's component YAML (code uploaded first)."""
    with client(ctx) as http:
        made = sdk_components.create(http, file)
    if output_format(ctx, output) is OutputFormat.json:
        print_json(made)
        return
    console().print(f"Component {made['name']} version {made['version']} ({made['id']})",
                    markup=False)  # fmt: skip


@app.command("list")
def list_components(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Every version of this component.")
    ] = None,
    archived: Annotated[
        bool, typer.Option("--include-archived", help="Archived ones too.")
    ] = False,
    output: OutputOption = None,
) -> None:
    """The newest version of each component, or every version of one (-n)."""
    with client(ctx) as http:
        if name:
            found = http.get(f"{_path(name)}/versions")["components"]
        else:
            found = http.get("/api/v1/components", include_archived=archived)["components"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(found)
        return
    table = keep_names_whole(Table(title="Components", title_justify="left"))
    for col in ("Name", "Version", "Display name", "Inputs", "Outputs", "Created"):
        table.add_column(col)
    for c in found:
        table.add_row(
            c["name"], c["version"] + (" (archived)" if c["archived"] else ""),
            escape(c.get("display_name") or "-"), ", ".join(i["name"] for i in c["inputs"]),
            ", ".join(o["name"] for o in c["outputs"]), fmt_time(c["created_at"]),
        )  # fmt: skip
    console().print(table)


@app.command("show")
@named(what="component")
def show(
    ctx: typer.Context,
    name: str,
    version: VersionOption = None,
    label: Annotated[str | None, typer.Option("--label", "-l", help="latest")] = None,
    output: OutputOption = None,
) -> None:
    """Show one version (default: the latest that is not archived)."""
    with client(ctx) as http:
        found = sdk_components.show(http, name, version or label)
    _show(found, output_format(ctx, output))


def _archive(ctx: typer.Context, name: str, version: str | None, verb: str) -> None:
    with client(ctx) as http:
        http.post(f"{_path(name)}/{verb}", {"version": version} if version else {})
    what = f"version {version} of {name}" if version else f"every version of {name}"
    console().print(f"{verb.capitalize()}d {what}.", markup=False)


@app.command("archive")
@named(what="component")
def archive(ctx: typer.Context, name: str, version: VersionOption = None) -> None:
    """Hide a version (or all) from listings and @latest; pipelines naming it still run."""
    _archive(ctx, name, version, "archive")


@app.command("restore")
@named(what="component")
def restore(ctx: typer.Context, name: str, version: VersionOption = None) -> None:
    """Bring an archived version (or all) back."""
    _archive(ctx, name, version, "restore")
