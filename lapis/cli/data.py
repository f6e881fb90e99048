"""``lapis data …``: versioned data assets, as ``az ml data`` manages them.

``create`` takes Azure's data file or options; a local ``path`` is uploaded by
this command to the workspace's default datastore first (hashed, with a
progress bar; files already there are not sent again, so an interrupted upload
resumes), and the version points at it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from lapis.cli._common import (
    OutputFormat,
    OutputOption,
    SetOption,
    apply_sets,
    client,
    console,
    fmt_time,
    keep_names_whole,
    named,
    output_format,
    print_json,
)
from lapis.errors import InvalidParameterValue
from lapis.sdk.connection import LapisHTTP
from lapis.sdk.data_upload import download_asset, upload_local
from lapis.specs.data_asset import parse_data_asset
from lapis.specs.yaml_lines import load, read_text_file

app = typer.Typer(
    help="Data assets: named, versioned pointers to files and folders on datastores.",
    no_args_is_help=True,
)
VersionOption = Annotated[
    str | None, typer.Option("--version", "-v", help="A version (default: the latest).")
]


def _path(name: str) -> str:
    return f"/api/v1/data/{quote(name, safe='')}"


def _show(
    d: dict[str, Any], fmt: OutputFormat, readers: list[dict[str, Any]] | None = None
) -> None:
    if fmt is OutputFormat.json:
        print_json(d)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan")
    grid.add_column()
    rows = [
        ("Name", f"{d['name']}:{d['version']}" + ("  (archived)" if d.get("archived") else "")),
        ("Type", d["type"]),
        ("Path", d["path"]),
        ("Description", d.get("description") or "-"),
        ("Tags", ", ".join(f"{k}={v}" for k, v in d.get("tags", {}).items()) or "-"),
        ("Created", f"{fmt_time(d['created_at'])} by {d.get('created_by') or '-'}"),
    ]
    if d.get("job"):
        rows.append(("Made by job", d["job"]))
    for reader in readers or []:
        rows.append(("Read by job", f"{reader['job']} (input {reader['input']}, version "
                     f"{reader['version']}, {reader['status']})"))  # fmt: skip
    for label, value in rows:
        grid.add_row(label, escape(value))
    console().print(grid)


@contextlib.contextmanager
def _bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A transfer's progress bar (bytes, speed), gone when the transfer ends; yields the
    ``progress(done, total)`` callback the SDK's upload and download call."""
    with Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
        TransferSpeedColumn(), console=console(), transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task(label, total=None)

        def seen(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield seen


def _upload(http: LapisHTTP, path: Path, kind: str) -> str:
    with _bar(f"uploading {path.name}") as seen:
        return upload_local(http, path, kind, seen)


@app.command("create")
def create(
    ctx: typer.Context,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="The data asset's YAML (Azure's format).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Name.")] = None,
    version: Annotated[str | None, typer.Option("--version", "-v", help="Version.")] = None,
    type_: Annotated[
        str | None, typer.Option("--type", "-t", help="uri_file, uri_folder (default) or mltable.")
    ] = None,
    path: Annotated[
        str | None,
        typer.Option(
            "--path", "-p", help="Local path (uploaded), azureml://..., or a storage URL."
        ),
    ] = None,
    description: Annotated[str | None, typer.Option("--description", help="Free text.")] = None,
    set_: SetOption = None,
    output: OutputOption = None,
) -> None:
    """Register a data-asset version (the next integer unless --version is given)."""
    doc: dict[str, Any] = {}
    base = Path.cwd()
    source = "command line"
    if file:
        loc = load(read_text_file(file), str(file))
        parse_data_asset(loc, str(file))  # mistakes with their line, before any upload
        doc = dict(loc.data) if isinstance(loc.data, dict) else {}
        base, source = file.parent, str(file)
    doc = apply_sets(doc, set_)
    given = {"name": name, "version": version, "type": type_, "path": path,
             "description": description}  # fmt: skip
    doc.update({k: v for k, v in given.items() if v is not None})
    spec = parse_data_asset(doc, source)
    assert spec.uri is not None
    with client(ctx) as http:
        if spec.uri.kind == "local":
            local = Path(spec.uri.path).expanduser()
            local = local if local.is_absolute() else base / local
            if not local.exists():
                raise InvalidParameterValue(f"{source}: 'path' {spec.uri.path} does not exist here")
            doc["path"] = _upload(http, local, spec.type)
            doc.pop("datastore", None)
        made = http.post("/api/v1/data", {**doc, "source": source})
    _show(made, output_format(ctx, output))


@app.command("list")
def list_data(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Every version of this asset.")
    ] = None,
    archived: Annotated[
        bool, typer.Option("--include-archived", help="Archived ones too.")
    ] = False,
    output: OutputOption = None,
) -> None:
    """The newest version of each data asset, or every version of one (-n)."""
    with client(ctx) as http:
        if name:
            found = http.get(f"{_path(name)}/versions")["data"]
        else:
            found = http.get("/api/v1/data", include_archived=archived)["data"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(found)
        return
    table = keep_names_whole(Table(title="Data assets", title_justify="left"))
    for col in ("Name", "Version", "Type", "Path", "Created"):
        table.add_column(col)
    for d in found:
        table.add_row(d["name"], d["version"] + (" (archived)" if d["archived"] else ""),
                      d["type"], escape(d["path"]), fmt_time(d["created_at"]))  # fmt: skip
    console().print(table)


@app.command("show")
@named(what="data asset")
def show(
    ctx: typer.Context,
    name: str,
    version: VersionOption = None,
    label: Annotated[str | None, typer.Option("--label", "-l", help="latest")] = None,
    output: OutputOption = None,
) -> None:
    """Show one version (default: the latest that is not archived)."""
    with client(ctx) as http:
        found = http.get(f"{_path(name)}/versions/{quote(version or 'latest', safe='')}")
        fmt = output_format(ctx, output)
        readers = None if fmt is OutputFormat.json else http.get(f"{_path(name)}/jobs")["jobs"]
    _show(found, fmt, readers)


def _archive(ctx: typer.Context, name: str, version: str | None, verb: str) -> None:
    with client(ctx) as http:
        http.post(f"{_path(name)}/{verb}", {"version": version} if version else {})
    what = f"version {version} of {name}" if version else f"every version of {name}"
    console().print(f"{verb.capitalize()}d {what}.", markup=False)


@app.command("archive")
@named(what="data asset")
def archive(ctx: typer.Context, name: str, version: VersionOption = None) -> None:
    """Hide a version (or all) from listings and @latest; jobs naming it still work."""
    _archive(ctx, name, version, "archive")


@app.command("restore")
@named(what="data asset")
def restore(ctx: typer.Context, name: str, version: VersionOption = None) -> None:
    """Bring an archived version (or all) back."""
    _archive(ctx, name, version, "restore")


@app.command("download")
@named(what="data asset")
def download(
    ctx: typer.Context,
    name: str,
    version: VersionOption = None,
    download_path: Annotated[
        Path, typer.Option("--download-path", "-p", help="Folder to put <name>/ in.")
    ] = Path("."),
) -> None:
    """Copy a data asset's files into <download-path>/<name>/ (again: only what is missing)."""
    with client(ctx) as http, _bar(f"downloading {name}") as seen:
        folder = download_asset(http, name, version, download_path, seen)
    console().print(f"Downloaded {name} to {folder}", markup=False)


@app.command("preview")
@named(what="data asset")
def preview(ctx: typer.Context, name: str, version: VersionOption = None,
            output: OutputOption = None) -> None:  # fmt: skip
    """The first rows and columns of a table: CSV, TSV, JSON lines, Parquet, MLTable."""
    with client(ctx) as http:
        found = http.get(f"{_path(name)}/versions/{quote(version or 'latest', safe='')}/preview")
    if output_format(ctx, output) is OutputFormat.json:
        print_json(found)
        return
    if not found["columns"]:
        console().print(found.get("note") or "nothing to preview", markup=False)
        return
    table = Table(*[f"{c['name']}\n[dim]{c['type']}[/dim]" for c in found["columns"]],
                  title=f"{name}: {found['source']} ({found['format']})")  # fmt: skip
    for row in found["rows"]:
        table.add_row(*[escape("" if v is None else str(v)) for v in row])
    console().print(table)
