"""``lapis environment …``: register, inspect and build the environments jobs run in.

The YAML is sent to the server as text so that its complaints name lines; a
``conda_file`` given as a path is read here, relative to the YAML's folder
(the server never reads the caller's files), and sent inlined.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lapis.cli._common import (
    OutputFormat,
    OutputOption,
    SetOption,
    WebOption,
    apply_sets,
    client,
    console,
    fmt_time,
    named,
    open_web,
    output_format,
    print_json,
)
from lapis.errors import InvalidParameterValue, LapisError, ResourceDoesNotExist
from lapis.specs.yaml_lines import load, read_text_file, safe_load

app = typer.Typer(
    help="Environments: the Python packages a job runs with, built once with uv and reused.",
    no_args_is_help=True,
)

_REF = re.compile(
    r"^(?:azureml:)?(?P<name>[A-Za-z0-9][\w.\-]*)(?::(?P<version>[\w.\-]+)|@(?P<label>\w+))?$"
)
BUILD_STYLE = {"Succeeded": "green", "Failed": "red", "Building": "cyan"}


def _ref(text: str) -> tuple[str, str]:
    """``NAME``, ``NAME:VERSION`` or ``NAME@latest`` → (name, version or 'latest')."""
    m = _REF.match(text.strip())
    if m is None:
        raise InvalidParameterValue(
            f"'{text}' is not an environment reference; use NAME, NAME:VERSION or NAME@latest"
        )
    if m["label"] and m["label"] != "latest":
        raise InvalidParameterValue(f"Unknown label '@{m['label']}': only @latest is supported")
    return m["name"], m["version"] or "latest"


def _inline_conda(path: Path, text: str) -> str | None:
    """The conda file's text when the YAML names it by path (relative to the YAML)."""
    doc = load(text, path.name)
    data = doc.data if isinstance(doc.data, dict) else {}
    raw = data.get("conda_file")
    if not isinstance(raw, str) or "\n" in raw.strip():
        return None
    target = (path.parent / raw).resolve()
    if not target.is_file():
        raise doc.error(("conda_file",), f"file not found: {target}")
    return read_text_file(target, "conda file")


@app.command("create")
def create(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Option("--file", "-f", help="Environment YAML (Azure ML's format).")
    ],
    name: Annotated[str | None, typer.Option(help="Register under this name instead.")] = None,
    version: Annotated[
        str | None, typer.Option(help="Version to register (default: the next integer).")
    ] = None,
    set_: SetOption = None,
    output: OutputOption = None,
) -> None:
    """Register an environment version from a YAML file (its conda file is read relative to it)."""
    text = read_text_file(file, "environment file")
    if set_:  # applied to the document, which then goes as YAML (its lines shift)
        import yaml

        data = safe_load(text, str(file))
        if not isinstance(data, dict):
            raise InvalidParameterValue(f"{file}: an environment file must be a mapping")
        text = yaml.safe_dump(apply_sets(data, set_), sort_keys=False)
    overrides: dict[str, Any] = {"name": name, "version": version}
    overrides["conda_file"] = _inline_conda(file, text)
    with client(ctx) as http:
        env = http.post(
            "/api/v1/environments",
            {"yaml": text, "source": file.name, "overrides": overrides},
        )
    if output_format(ctx, output) is OutputFormat.json:
        print_json(env)
        return
    console().print(
        f"Registered environment [bold]{escape(env['name'])}:{escape(env['version'])}[/bold]"
        f" ({_what(env)}). Build it now with `lapis environment build "
        f"{escape(env['name'])}:{escape(env['version'])}`, or let the first job do it."
    )


def _what(env: dict[str, Any]) -> str:
    if env["kind"] == "system":
        return f"image {env['image']}, runs in Lapis' interpreter"
    reqs = env["spec"]["requirements"]
    py = env["spec"]["python"] or "host Python"
    shown = ", ".join(reqs[:4]) + (f" +{len(reqs) - 4}" if len(reqs) > 4 else "")
    return f"{py}; {shown or 'no packages'}"


def _build_cell(env: dict[str, Any]) -> str:
    if env["kind"] == "system":
        return "[dim]not needed[/dim]"
    build = env.get("build")
    if not build:
        return "[dim]not built[/dim]"
    style = BUILD_STYLE.get(build["status"], "white")
    return f"[{style}]{build['status']}[/{style}]"


def _table(envs: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("Name", style="bold")
    table.add_column("Version", justify="right")
    table.add_column("Contents")
    table.add_column("Build")
    table.add_column("Created")
    for e in envs:
        name = escape(e["name"]) + (" [cyan](curated)[/cyan]" if e["curated"] else "")
        name += " [yellow](archived)[/yellow]" if e.get("archived") else ""
        table.add_row(
            name,
            escape(e["version"]),
            escape(_what(e)),
            _build_cell(e),
            fmt_time(e.get("created_at")) if e.get("created_at") else "-",
        )
    return table


@app.command("list")
def list_environments(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Show every version of this one.")
    ] = None,
    output: OutputOption = None,
) -> None:
    """List environments (latest version of each, curated ones included)."""
    with client(ctx) as http:
        if name:
            envs = http.get(f"/api/v1/environments/{name}/versions")["environments"]
        else:
            envs = http.get("/api/v1/environments")["environments"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(envs)
        return
    console().print(_table(envs, f"Versions of {name}" if name else "Environments"))


@app.command("versions")
@named(what="environment")
def versions(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Environment name.")],
    output: OutputOption = None,
) -> None:
    """List every version of one environment, newest first."""
    list_environments(ctx, name=name, output=output)


@app.command("show")
@named(param="ref", what="environment")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME:VERSION or NAME@latest.")],
    web: WebOption = False,
    output: OutputOption = None,
) -> None:
    """Show one version: what it installs, its content digest and its build status."""
    name, version = _ref(ref)
    with client(ctx) as http:
        env = http.get(f"/api/v1/environments/{name}/versions/{version}")
        if web:
            open_web(http, f"/environments/{env['name']}")
    if output_format(ctx, output) is OutputFormat.json:
        print_json(env)
        return
    out = console()
    out.print(
        f"[bold]{escape(env['name'])}:{escape(env['version'])}[/bold]"
        + (" [cyan](curated)[/cyan]" if env["curated"] else "")
    )
    if env.get("description"):
        out.print(escape(env["description"]))
    spec = env["spec"]
    rows = [
        ("Kind", env["kind"]),
        ("Image", env.get("image") or "-"),
        ("Python", spec.get("python") or "host interpreter"),
        ("Requirements", "\n".join(spec.get("requirements") or []) or "-"),
        ("Conda-only", ", ".join(spec.get("conda") or []) or "-"),
        ("Digest", env.get("digest") or "-"),
        ("Tags", ", ".join(f"{k}={v}" for k, v in (env.get("tags") or {}).items()) or "-"),
        ("Created", f"{fmt_time(env.get('created_at'))} by {env.get('created_by') or '-'}"),
    ]
    if env.get("stands_in_for"):  # an Azure ML curated name, resolved to this one
        rows.insert(0, ("Asked for", f"{env['stands_in_for']} (Azure ML curated)"))
        rows.insert(1, ("Differs", env.get("note") or "-"))
    if env.get("azure_names"):
        rows.insert(0, ("Stands in for", ", ".join(env["azure_names"]) + " (Azure ML curated)"))
    build = env.get("build")
    rows.append(("Build", _build_cell(env)))
    if build and build.get("error"):
        rows.append(("Build error", f"[red]{escape(build['error'])}[/red]"))
    if build and build.get("log_path"):
        rows.append(("Build log", build["log_path"]))
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, value if key in ("Build", "Build error") else escape(str(value)))
    out.print(table)


@app.command("register-kernel")
@named(param="ref", what="environment")
def register_kernel(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME:VERSION or NAME@latest.")],
    display_name: Annotated[
        str | None, typer.Option("--display-name", help="The kernel's name in JupyterLab.")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Offer an environment's Python as a kernel in every compute instance's JupyterLab
    (built first; it needs ipykernel in its conda file)."""
    name, version = _ref(ref)
    path = f"/api/v1/environments/{name}/versions/{version}/kernel"
    body = {"display_name": display_name} if display_name else {}
    with client(ctx) as http:
        if output_format(ctx, output) is OutputFormat.json or not sys.stderr.isatty():
            made = http.post(path, body)
        else:
            with Console(stderr=True).status(f"Building {escape(ref)} with uv…"):
                made = http.post(path, body)
    if output_format(ctx, output) is OutputFormat.json:
        print_json(made)
        return
    console().print(f"Kernel [bold]{escape(made['display_name'])}[/bold] ({made['kernel']}) is "
                    "in every instance's JupyterLab launcher")  # fmt: skip


@app.command("build")
@named(param="ref", what="environment")
def build(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME:VERSION or NAME@latest.")],
    output: OutputOption = None,
) -> None:
    """Build an environment now, so the first job using it starts at once (cached by content)."""
    name, version = _ref(ref)
    as_json = output_format(ctx, output) is OutputFormat.json
    path = f"/api/v1/environments/{name}/versions/{version}"
    with client(ctx) as http:
        try:
            if as_json or not sys.stderr.isatty():
                result = http.post(f"{path}/build")
            else:
                status = Console(stderr=True).status(f"Building {escape(ref)} with uv…")
                with status:
                    result = http.post(f"{path}/build")
        except LapisError as exc:
            raise _build_failure(http, path, ref, exc) from None
    if as_json:
        print_json(result)
        return
    label = f"{result['name']}:{result['version']}"
    if result["kind"] == "system":
        console().print(f"{escape(label)}: {escape(result['message'])}")
    elif result["cache_hit"]:
        console().print(
            f"[green]✓[/green] {escape(label)} is already built (cache hit, "
            f"{result['seconds']:.2f} s): {escape(result['path'])}"
        )
    else:
        console().print(
            f"[green]✓[/green] Built {escape(label)} in {result['seconds']:.1f} s: "
            f"{escape(result['python'])}"
        )


def _build_failure(http: Any, path: str, ref: str, exc: LapisError) -> LapisError:
    """One line: the reason the server recorded and where the full log is."""
    try:
        env = http.get(path)
    except LapisError:
        return exc
    build = env.get("build") or {}
    if isinstance(exc, ResourceDoesNotExist) or build.get("status") != "Failed":
        return LapisError(exc.message.splitlines()[0])
    reason = build.get("error") or exc.message.splitlines()[0]
    return LapisError(
        f"building {env['name']}:{env['version']} failed: {reason} "
        f"(build log: {build.get('log_path')})"
    )


@app.command("build-log")
@named(param="ref", what="environment")
def build_log(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME:VERSION or NAME@latest.")],
) -> None:
    """Print uv's output from the last build of this environment (to see why it failed)."""
    name, version = _ref(ref)
    with client(ctx) as http:
        resp = http.request("GET", f"/api/v1/environments/{name}/versions/{version}/build-log")
    sys.stdout.write(resp.text)


@app.command("archive")
@named(param="ref", what="environment")
def archive(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME:VERSION to hide from lists and @latest.")],
    output: OutputOption = None,
) -> None:
    """Archive a version: it leaves listings and @latest; jobs naming it exactly still run."""
    name, version = _ref(ref)
    if version == "latest":
        raise InvalidParameterValue("Name the version to archive: NAME:VERSION")
    with client(ctx) as http:
        env = http.post(f"/api/v1/environments/{name}/versions/{version}/archive")
    if output_format(ctx, output) is OutputFormat.json:
        print_json(env)
        return
    console().print(f"Archived {escape(env['name'])}:{escape(env['version'])}")
