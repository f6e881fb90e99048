"""``lapis online-deployment …``: the processes behind an online endpoint.

The YAML is checked and what the server cannot read from this machine (code
folder, inline model, environment files) is sent ahead by
``lapis.sdk.serving``, which ``MLClient`` uses too. ``create`` and ``update`` wait,
with a status line, until the deployment is ``Succeeded`` or ``Failed``
(``--no-wait`` returns at once).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lapis.cli._common import (
    NoWaitOption,
    OutputFormat,
    OutputOption,
    SetOption,
    WebOption,
    YesOption,
    apply_sets,
    client,
    console,
    delete_and_report,
    fmt_time,
    open_web,
    output_format,
    print_json,
)
from lapis.errors import InvalidParameterValue
from lapis.sdk.connection import LapisHTTP
from lapis.sdk.serving import (
    deployment_path,
    load_deployment,
    prepare_deployment,
    read_yaml,
    wait_deployment,
)
from lapis.specs.yaml_lines import Located, safe_load

app = typer.Typer(
    help="Online deployments: model, code and environment served by instance processes.",
    no_args_is_help=True,
)

FileOption = Annotated[
    Path, typer.Option("--file", "-f", help="Deployment YAML in Azure ML's format.")
]
EndpointOption = Annotated[
    str,
    typer.Option(
        "--endpoint-name", "--endpoint", "-e", help="The endpoint the deployment belongs to."
    ),
]
NameOption = Annotated[str, typer.Option("--name", "-n", help="The deployment's name.")]
WaitOption = Annotated[
    bool,
    typer.Option("--wait/--no-wait", help="Wait until the deployment is Succeeded or Failed."),
]


_path = deployment_path


def _load(
    file: Path, endpoint: str | None, name: str | None, sets: list[str] | None = None
) -> tuple[Located, str]:
    loc = read_yaml(file)
    if isinstance(loc.data, dict):
        apply_sets(loc.data, sets)
    return load_deployment(loc, endpoint, name)


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _wait(http: LapisHTTP, endpoint: str, name: str, verb: str) -> dict[str, Any]:
    """Poll until Succeeded or Failed, with a status line on stderr."""
    with _err().status(f"{verb} {name}…") as status:

        def progress(d: dict[str, Any]) -> None:
            ready = sum(
                1 for i in d["instances"] if i["ready"] and i["generation"] == d["generation"]
            )
            status.update(
                f"{verb} deployment {escape(name)}: {d['provisioning_state']}, "
                f"{ready}/{d['instance_count']} instance(s) ready"
            )

        return wait_deployment(http, endpoint, name, progress)


def _finish(ctx: typer.Context, d: dict[str, Any], output: OutputFormat | None) -> None:
    if output_format(ctx, output) is OutputFormat.json:
        print_json(d)
    else:
        state = d["provisioning_state"]
        colour = {"Succeeded": "green", "Failed": "red"}.get(state, "yellow")
        line = Text.assemble((f"{d['endpoint_name']}/{d['name']}", "bold"), ": ", (state, colour))
        line.append(f"  {d['model']}, {d['instance_count']} instance(s)", style="dim")
        console().print(line)
    if d["provisioning_state"] == "Failed":
        _err().print(f"[bold red]Error:[/bold red] {escape(str(d.get('state_reason')))}")
        raise typer.Exit(1)


@app.command("create")
def create(
    ctx: typer.Context,
    file: FileOption,
    endpoint_name: Annotated[
        str | None,
        typer.Option(
            "--endpoint-name", "--endpoint", "-e", help="Endpoint (overrides the file's)."
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Deployment name (overrides the file's).")
    ] = None,
    all_traffic: Annotated[
        bool, typer.Option("--all-traffic", help="Send 100% of the endpoint's traffic here.")
    ] = False,
    wait: WaitOption = True,
    set_: SetOption = None,
    output: OutputOption = None,
) -> None:
    """Create a deployment from a YAML file and wait until its instances are ready."""
    loc, endpoint = _load(file, endpoint_name, name, set_)
    with client(ctx) as http:
        body = prepare_deployment(http, loc, endpoint)
        if all_traffic:
            body["all_traffic"] = True
        d = http.post(_path(endpoint), body)
        if wait:
            d = _wait(http, endpoint, d["name"], "Creating")
    _finish(ctx, d, output)


def _set_pairs(items: list[str]) -> dict[str, Any]:

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidParameterValue(f"--set expects key=value, got {item!r}")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = safe_load(value, f"--set {key}")
    return out


@app.command("update")
def update(
    ctx: typer.Context,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Deployment YAML in Azure ML's format.")
    ] = None,
    endpoint_name: Annotated[
        str | None,
        typer.Option(
            "--endpoint-name", "--endpoint", "-e", help="Endpoint (overrides the file's)."
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Deployment (overrides the file's).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Change one key, e.g. --set instance_count=2 (repeatable)."),
    ] = None,
    wait: WaitOption = True,
    output: OutputOption = None,
) -> None:
    """Update a deployment; a new model, code or environment rolls its instances over."""
    with client(ctx) as http:
        if file is not None:
            loc, endpoint = _load(file, endpoint_name, name)
            body = prepare_deployment(http, loc, endpoint)
            body.update(_set_pairs(set_ or []))
            target = str(body["name"])
        else:
            if not (endpoint_name and name and set_):
                raise InvalidParameterValue(
                    "give -f FILE, or --endpoint-name, --name and --set key=value"
                )
            endpoint, target = endpoint_name, name
            body = {**_set_pairs(set_), "source": "command line"}
        d = http.request("PATCH", _path(endpoint, target), json_body=body).json()
        if wait:
            d = _wait(http, endpoint, d["name"], "Updating")
    _finish(ctx, d, output)


@app.command("list")
def list_deployments(
    ctx: typer.Context, endpoint_name: EndpointOption, output: OutputOption = None
) -> None:
    """List an endpoint's deployments with their state and instances."""
    with client(ctx) as http:
        found = http.get(_path(endpoint_name))["deployments"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(found)
        return
    table = Table(title=f"Deployments of {endpoint_name}", title_justify="left")
    for col in ("Name", "State", "Model", "Instances", "Traffic"):
        table.add_column(col)
    for d in found:
        ready = sum(1 for i in d["instances"] if i["ready"])
        table.add_row(
            Text(d["name"], style="bold"),
            d["provisioning_state"],
            d["model"],
            f"{ready}/{d['instance_count']} ready",
            f"{d['traffic']}%",
        )
    console().print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    endpoint_name: EndpointOption,
    name: NameOption,
    web: WebOption = False,
    output: OutputOption = None,
) -> None:
    """Show a deployment: state and reason, model, settings and each instance."""
    with client(ctx) as http:
        d = http.get(_path(endpoint_name, name))
        if web:
            open_web(http, f"/endpoints/{d['endpoint_name']}")
    if output_format(ctx, output) is OutputFormat.json:
        print_json(d)
        return
    rs = d["request_settings"]
    rows: list[tuple[str, Any]] = [
        ("name", Text(d["name"], style="bold")),
        ("endpoint", d["endpoint_name"]),
        ("provisioning_state", d["provisioning_state"]),
        ("model", f"{d['model']} ({d['model_type']})"),
        ("environment", d["environment_label"]),
        ("instance_count", str(d["instance_count"])),
        ("traffic", f"{d['traffic']}%"),
        (
            "request_settings",
            f"timeout {rs['request_timeout_ms']} ms, "
            f"{rs['max_concurrent_requests_per_instance']} concurrent per instance",
        ),
    ]
    if d.get("code_configuration"):
        cc = d["code_configuration"]
        rows.append(("scoring_script", f"{cc['scoring_script']} (in {cc['code']})"))
    if d.get("state_reason"):
        rows.append(("state_reason", Text(str(d["state_reason"]), style="red")))
    rows.append(("created", f"{fmt_time(d.get('created_at'))} by {d.get('created_by') or '-'}"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan")
    grid.add_column()
    for label, value in rows:
        grid.add_row(label, value)
    con = console()
    con.print(grid)
    table = Table(title="Instances", title_justify="left")
    for col in ("Index", "Generation", "State", "Restarts", "PID", "Port"):
        table.add_column(col)
    for i in d["instances"]:
        table.add_row(
            str(i["index"]),
            str(i["generation"]),
            i["state"],
            str(i["restarts"]),
            str(i["pid"] or "-"),
            str(i["port"] or "-"),
        )
    con.print(table)


@app.command("delete")
def delete(
    ctx: typer.Context,
    endpoint_name: EndpointOption,
    name: NameOption,
    yes: YesOption = False,
    output: OutputOption = None,
    no_wait: NoWaitOption = False,
) -> None:
    """Delete a deployment and stop its instances (refused while it receives traffic)."""
    what = f"deployment '{name}' of endpoint '{endpoint_name}'"
    delete_and_report(ctx, what, _path(endpoint_name, name), yes, output)


@app.command("get-logs")
def get_logs(
    ctx: typer.Context,
    endpoint_name: EndpointOption,
    name: NameOption,
    lines: Annotated[int, typer.Option("--lines", "-l", help="Last N lines of each log.")] = 200,
    instance: Annotated[
        int | None, typer.Option("--instance", "-i", help="Only this instance's output.")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Print the deployment log (starts, restarts, rollovers) and the instances' output."""
    params: dict[str, Any] = {"lines": lines}
    if instance is not None:
        params["instance"] = instance
    with client(ctx) as http:
        body = http.get(f"{_path(endpoint_name, name)}/logs", **params)
    if output_format(ctx, output) is OutputFormat.json:
        print_json(body)
        return
    sys.stdout.write(body["log"] if body["log"].endswith("\n") else body["log"] + "\n")
