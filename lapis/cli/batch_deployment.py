"""``lapis batch-deployment …``: a model, scoring script, environment and compute behind a
batch endpoint (the endpoints' commands are in ``lapis.cli.batch``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.markup import escape
from rich.table import Table

from lapis.cli._common import (
    NoWaitOption,
    OutputFormat,
    OutputOption,
    SetOption,
    YesOption,
    apply_sets,
    client,
    console,
    delete_and_report,
    fmt_time,
    output_format,
    print_json,
)
from lapis.cli.batch import EndpointOption, FileOption, _grid, _list_jobs, _load, _path, _tags
from lapis.sdk.serving import prepare_batch_deployment
from lapis.specs.batch import parse_batch_deployment

deployment_app = typer.Typer(
    help="Batch deployments: a model, scoring script, environment and compute behind a "
    "batch endpoint.",
    no_args_is_help=True,
)


# --- deployments -------------------------------------------------------------------------
def _show_deployment(d: dict[str, Any], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        print_json(d)
        return
    retry = d.get("retry_settings") or {}
    code = d.get("code_configuration") or {}
    _grid(
        [
            ("name", f"{d['name']}{' (default)' if d.get('is_default') else ''}"),
            ("endpoint", d.get("endpoint_name")),
            ("model", f"{d.get('model')} ({d.get('model_type')})"),
            ("scoring_script", code.get("scoring_script") or "- (MLflow model)"),
            ("environment", d.get("environment_label")),
            ("compute", d.get("compute")),
            (
                "workers",
                f"{(d.get('resources') or {}).get('instance_count', 1)} instance(s) x "
                f"{d.get('max_concurrency_per_instance')}",
            ),
            ("mini_batch_size", d.get("mini_batch_size")),
            ("output", f"{d.get('output_action')} → {d.get('output_file_name')}"),
            (
                "retry_settings",
                f"max_retries {retry.get('max_retries')}, timeout {retry.get('timeout')} s",
            ),
            ("error_threshold", d.get("error_threshold")),
            ("description", d.get("description")),
            ("tags", _tags(d.get("tags"))),
            ("created", f"{fmt_time(d.get('created_at'))} by {d.get('created_by') or '-'}"),
        ]
    )


DeploymentEndpointOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint-name", "--endpoint", "-e", help="Endpoint (default: the file's endpoint_name)."
    ),
]
SetDefaultOption = Annotated[
    bool, typer.Option("--set-default", help="Make it the endpoint's default deployment.")
]


def _send_deployment(
    ctx: typer.Context,
    file: Path,
    endpoint_name: str | None,
    set_default: bool,
    output: OutputFormat | None,
    *,
    replace: bool,
    sets: list[str] | None = None,
    name: str | None = None,
) -> None:
    """Check the YAML (file:line errors before connecting), upload its code, create or replace.
    ``--name`` and ``--endpoint-name`` win over the file's values, as in ``az ml``."""
    loc = _load(file)
    if isinstance(loc.data, dict):
        apply_sets(loc.data, sets)
        if name:
            loc.data["name"] = name
        if endpoint_name:
            loc.data["endpoint_name"] = endpoint_name
    spec = parse_batch_deployment(loc)
    with client(ctx) as http:
        body, endpoint = prepare_batch_deployment(http, loc, endpoint_name)
        body["set_default"] = set_default
        if replace:
            target = f"{_path(endpoint)}/deployments/{quote(spec.name, safe='')}"
            d = http.request("PUT", target, json_body=body).json()
        else:
            d = http.post(f"{_path(endpoint)}/deployments", body)
    _show_deployment(d, output_format(ctx, output))


DeploymentNameOption = Annotated[
    str | None,
    typer.Option("--name", "-n", help="The deployment's name (wins over the file's)."),
]


@deployment_app.command("create")
def create_deployment(
    ctx: typer.Context,
    file: FileOption,
    endpoint_name: DeploymentEndpointOption = None,
    name: DeploymentNameOption = None,
    set_default: SetDefaultOption = False,
    set_: SetOption = None,
    output: OutputOption = None,
    no_wait: NoWaitOption = False,
) -> None:
    """Create a batch deployment from YAML; its scoring code is uploaded and frozen now."""
    _send_deployment(
        ctx, file, endpoint_name, set_default, output, replace=False, sets=set_, name=name
    )


@deployment_app.command("update")
def update_deployment(
    ctx: typer.Context,
    file: FileOption,
    endpoint_name: DeploymentEndpointOption = None,
    name: DeploymentNameOption = None,
    set_default: SetDefaultOption = False,
    set_: SetOption = None,
    output: OutputOption = None,
) -> None:
    """Replace a batch deployment with the YAML's (code uploaded again); past jobs keep theirs."""
    _send_deployment(
        ctx, file, endpoint_name, set_default, output, replace=True, sets=set_, name=name
    )


@deployment_app.command("list")
def list_deployments(
    ctx: typer.Context, endpoint_name: EndpointOption, output: OutputOption = None
) -> None:
    """List a batch endpoint's deployments."""
    with client(ctx) as http:
        deployments = http.get(f"{_path(endpoint_name)}/deployments")["deployments"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(deployments)
        return
    table = Table("name", "default", "model", "compute", "mini_batch_size", "workers", "created")
    for d in deployments:
        workers = (d.get("resources") or {}).get("instance_count", 1) * int(
            d.get("max_concurrency_per_instance") or 1
        )
        table.add_row(
            f"[bold]{escape(d['name'])}[/bold]",
            "yes" if d.get("is_default") else "",
            escape(str(d.get("model"))),
            escape(str(d.get("compute"))),
            str(d.get("mini_batch_size")),
            str(workers),
            fmt_time(d.get("created_at")),
        )
    console().print(table)


@deployment_app.command("list-jobs")
def list_deployment_jobs(
    ctx: typer.Context,
    endpoint_name: EndpointOption,
    name: Annotated[str, typer.Option("--name", "-n", help="The deployment's name.")],
    max_results: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    output: OutputOption = None,
) -> None:
    """List the scoring jobs one batch deployment ran, newest first."""
    _list_jobs(ctx, endpoint_name, name, max_results, output)


@deployment_app.command("show")
def show_deployment(
    ctx: typer.Context,
    endpoint_name: EndpointOption,
    name: Annotated[str, typer.Option("--name", "-n", help="The deployment's name.")],
    output: OutputOption = None,
) -> None:
    """Show a batch deployment: model, scoring script, workers, retries, thresholds."""
    with client(ctx) as http:
        d = http.get(f"{_path(endpoint_name)}/deployments/{quote(name, safe='')}")
    _show_deployment(d, output_format(ctx, output))


@deployment_app.command("delete")
def delete_deployment(
    ctx: typer.Context,
    endpoint_name: EndpointOption,
    name: Annotated[str, typer.Option("--name", "-n", help="The deployment's name.")],
    yes: YesOption = False,
    output: OutputOption = None,
    no_wait: NoWaitOption = False,
) -> None:
    """Delete a batch deployment (its past jobs stay)."""
    what = f"deployment '{name}' of batch endpoint '{endpoint_name}'"
    path = f"{_path(endpoint_name)}/deployments/{quote(name, safe='')}"
    delete_and_report(ctx, what, path, yes, output)
