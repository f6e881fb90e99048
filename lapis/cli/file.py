"""``lapis file …``: the workspace's file share, where notebooks live and every compute
instance's JupyterLab works. Paths without ``Users/`` in front are inside your own
folder (``Users/<you>/``); others' folders can be read, not changed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
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
from lapis.sdk import files as sdk_files

app = typer.Typer(
    help="The workspace's file share: notebooks and files seen from every compute instance.",
    no_args_is_help=True,
)
PathArg = Annotated[str, typer.Argument(help="A path in the file share (default: your folder).")]


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@app.command("ls")
def ls(ctx: typer.Context, path: PathArg = "", output: OutputOption = None) -> None:
    """List a folder of the file share (folders first)."""
    with client(ctx) as http:
        found = sdk_files.listing(http, path)
    if output_format(ctx, output) is OutputFormat.json:
        print_json(found)
        return
    table = Table("name", "size", "modified", title=escape(found["path"] or "/"))
    for e in found["entries"]:
        name = escape(e["name"]) + ("/" if e["type"] == "folder" else "")
        table.add_row(name, "-" if e["type"] == "folder" else _size(e["size"]),
                      fmt_time(e["modified"]))  # fmt: skip
    console().print(table)


@app.command("upload")
def upload(
    ctx: typer.Context,
    local: Annotated[Path, typer.Argument(help="A local file or folder.")],
    path: PathArg = "",
    no_overwrite: Annotated[
        bool, typer.Option("--no-overwrite", help="Refuse to replace an existing file.")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Upload a file, or a folder with everything in it, into the file share."""
    with client(ctx) as http:
        written = sdk_files.upload(http, local, path, overwrite=not no_overwrite)
    if output_format(ctx, output) is OutputFormat.json:
        print_json(written)
        return
    where = written[0]["path"] if len(written) == 1 else f"{len(written)} files"
    console().print(f"Uploaded {escape(str(local))} → {escape(where)}")


@app.command("download")
def download(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="A file or folder in the file share.")],
    download_path: Annotated[Path, typer.Option(help="Local folder to write into.")] = Path("."),
    output: OutputOption = None,
) -> None:
    """Download a file, or a folder with everything in it."""
    with client(ctx) as http:
        written = sdk_files.download(http, path, download_path)
    if output_format(ctx, output) is OutputFormat.json:
        print_json([str(p) for p in written])
        return
    console().print(f"Downloaded {len(written)} file(s) into {escape(str(download_path))}")


@app.command("rm")
def rm(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="A file or folder in your folder.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    output: OutputOption = None,
) -> None:
    """Delete a file, or a folder with everything in it."""
    if not yes and not typer.confirm(f"Delete {path} from the file share?"):
        raise typer.Exit(1)
    with client(ctx) as http:
        gone = sdk_files.delete(http, path)
    if output_format(ctx, output) is OutputFormat.json:
        print_json({"deleted": gone})
        return
    console().print(f"Deleted {escape(gone)}")


@app.command("mkdir")
def mkdir(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="The new folder.")],
    output: OutputOption = None,
) -> None:
    """Make a folder (and the folders above it)."""
    with client(ctx) as http:
        made = sdk_files.mkdir(http, path)
    if output_format(ctx, output) is OutputFormat.json:
        print_json(made)
        return
    console().print(f"Made {escape(made['path'])}/")


@app.command("mv")
def mv(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="A file or folder in your folder.")],
    to: Annotated[str, typer.Argument(help="Its new path.")],
    output: OutputOption = None,
) -> None:
    """Rename or move a file or folder."""
    with client(ctx) as http:
        moved = sdk_files.rename(http, path, to)
    if output_format(ctx, output) is OutputFormat.json:
        print_json(moved)
        return
    console().print(f"Moved {escape(path)} → {escape(moved['path'])}")
