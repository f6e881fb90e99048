"""``lapis datastore …``: where data lives, as ``az ml datastore`` manages it.

The file's text goes to the server as it is, so a mistake is reported with its
line; credentials in it are sealed there and never shown again (``show`` says
which kind a datastore holds). ``-n`` works as in ``az ml``.
"""

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
    SetOption,
    YesOption,
    apply_sets,
    client,
    console,
    delete_and_report,
    fmt_time,
    keep_names_whole,
    named,
    output_format,
    print_json,
)
from lapis.specs.yaml_lines import load, read_text_file

app = typer.Typer(
    help="Datastores: Blob containers, ADLS Gen2 filesystems, file shares, S3 buckets and "
    "local folders that jobs and data assets refer to.",
    no_args_is_help=True,
)
FileOption = Annotated[
    Path, typer.Option("--file", "-f", help="The datastore's YAML in Azure ML's format.")
]


def _path(name: str) -> str:
    return f"/api/v1/datastores/{quote(name, safe='')}"


def _show(d: dict[str, Any], fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        print_json(d)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan")
    grid.add_column()
    credential = d["credential_kind"].replace("_", " ")
    rows = [
        ("Name", d["name"] + ("  (default)" if d.get("is_default") else "")),
        ("Type", d["type"]),
        ("URL", d["url"]),
        *[(k.replace("_", " ").capitalize(), str(v)) for k, v in d["settings"].items()],
        (
            "Credential",
            credential + (" (kept sealed; never shown)" if d["has_credentials"] else ""),
        ),
        ("Description", d.get("description") or "-"),
        ("Tags", ", ".join(f"{k}={v}" for k, v in d.get("tags", {}).items()) or "-"),
    ]
    if d.get("created_at"):
        rows.append(("Created", f"{fmt_time(d['created_at'])} by {d.get('created_by') or '-'}"))
    for label, value in rows:
        grid.add_row(label, escape(value))
    console().print(grid)


@app.command("create")
def create(
    ctx: typer.Context,
    file: FileOption,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Name (overrides the file's).")
    ] = None,
    set_: SetOption = None,
    output: OutputOption = None,
) -> None:
    """Create a datastore from a YAML file, or give an existing one new settings.

    Types: azure_blob, azure_data_lake_gen2, azure_file (Azure's shapes), s3 and local.
    """
    text = read_text_file(file)
    body: dict[str, Any] = {"yaml": text, "source": str(file)}
    if name or set_:  # changed on the way: send the document (lines then count from it)
        loc = load(text, str(file))
        doc = dict(loc.data) if isinstance(loc.data, dict) else {}
        doc = apply_sets(doc, set_)
        if name:
            doc["name"] = name
        body = {**doc, "source": str(file)}
    with client(ctx) as http:
        made = http.post("/api/v1/datastores", body)
    _show(made, output_format(ctx, output))


@app.command("list")
def list_datastores(ctx: typer.Context, output: OutputOption = None) -> None:
    """List datastores: the workspace's own two first."""
    with client(ctx) as http:
        found = http.get("/api/v1/datastores")["datastores"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(found)
        return
    table = keep_names_whole(Table(title="Datastores", title_justify="left"))
    for col in ("Name", "Type", "URL", "Credential"):
        table.add_column(col)
    for d in found:
        table.add_row(
            d["name"] + (" (default)" if d.get("is_default") else ""),
            d["type"],
            escape(d["url"]),
            d["credential_kind"].replace("_", " "),
        )
    console().print(table)


@app.command("show")
@named(what="datastore")
def show(ctx: typer.Context, name: str, output: OutputOption = None) -> None:
    """Show a datastore: its settings and which kind of credential it holds."""
    with client(ctx) as http:
        found = http.get(_path(name))
    _show(found, output_format(ctx, output))


@app.command("delete")
@named(what="datastore")
def delete(
    ctx: typer.Context, name: str, yes: YesOption = False, output: OutputOption = None
) -> None:
    """Forget a datastore (its data stays where it is)."""
    delete_and_report(ctx, f"datastore {name}", _path(name), yes, output)


@app.command("browse")
@named(what="datastore")
def browse(
    ctx: typer.Context,
    name: str,
    path: Annotated[
        str, typer.Option("--path", "-p", help="A folder inside the datastore (default: its root).")
    ] = "",
    output: OutputOption = None,
) -> None:
    """List one folder of a datastore, read with its credential (a Lapis verb)."""
    with client(ctx) as http:
        found = http.get(f"{_path(name)}/browse", path=path)
    if output_format(ctx, output) is OutputFormat.json:
        print_json(found["entries"])
        return
    table = keep_names_whole(Table(title=f"{name}:/{path}", title_justify="left"))
    table.add_column("Path")
    table.add_column("Size", justify="right")
    for e in found["entries"]:
        size = "folder" if e["is_dir"] else f"{e['size']:,}" if e["size"] is not None else "-"
        table.add_row(escape(e["path"] + ("/" if e["is_dir"] else "")), size)
    console().print(table)
