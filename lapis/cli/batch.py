"""``lapis batch-endpoint …`` and ``lapis batch-deployment …``: scoring folders in bulk.

YAML files are checked here first, so a mistake is reported with its file and
line before anything is sent or uploaded; the server checks again because it
alone knows which names, models and computes exist. ``batch-deployment
create`` uploads the ``code_configuration.code`` folder as a snapshot (as
``lapis job create`` does for ``code``) and reads an environment given as a
file. ``batch-endpoint invoke`` submits a job: follow it with ``--stream`` or
``lapis job stream``, fetch predictions with ``lapis job download``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, TextIO
from urllib.parse import quote

import typer
from rich.markup import escape
from rich.table import Table

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
    fmt_duration,
    fmt_time,
    named,
    open_web,
    output_format,
    print_json,
)
from lapis.cli.job import _status, _stream
from lapis.errors import InvalidParameterValue
from lapis.sdk import jobs as sdk_jobs
from lapis.sdk.connection import LapisHTTP
from lapis.sdk.data_upload import client_input
from lapis.sdk.serving import read_yaml
from lapis.specs.batch import parse_batch_endpoint

endpoint_app = typer.Typer(
    help="Batch endpoints: score folders of files in mini-batches, as jobs.",
    no_args_is_help=True,
)

FileOption = Annotated[Path, typer.Option("--file", "-f", help="YAML in Azure ML's format.")]
EndpointOption = Annotated[
    str, typer.Option("--endpoint-name", "--endpoint", "-e", help="The batch endpoint's name.")
]


def _path(name: str) -> str:
    return f"/api/v1/batchEndpoints/{quote(name, safe='')}"


_load = read_yaml


def _grid(rows: list[tuple[str, Any]]) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan")
    grid.add_column()
    for label, value in rows:
        if value not in (None, "", {}, []):
            grid.add_row(label, escape(str(value)))
    console().print(grid)


def _tags(tags: dict[str, str] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in (tags or {}).items())


# --- endpoints ---------------------------------------------------------------------------
def _show_endpoint(e: dict[str, Any], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        print_json(e)
        return
    _grid(
        [
            ("name", e["name"]),
            ("provisioning_state", e["provisioning_state"]),
            ("default deployment", (e.get("defaults") or {}).get("deployment_name") or "-"),
            ("deployments", ", ".join(e.get("deployments") or []) or "-"),
            ("scoring_uri", e.get("scoring_uri")),
            ("description", e.get("description")),
            ("tags", _tags(e.get("tags"))),
            ("created", f"{fmt_time(e.get('created_at'))} by {e.get('created_by') or '-'}"),
        ]
    )


@endpoint_app.command("create")
def create_endpoint(
    ctx: typer.Context,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Batch endpoint YAML in Azure ML's format.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Name (overrides the file's).")
    ] = None,
    set_: SetOption = None,
    output: OutputOption = None,
    no_wait: NoWaitOption = False,
) -> None:
    """Create a batch endpoint; its first deployment becomes its default."""
    doc: dict[str, Any] = {}
    if file is not None:
        loc = _load(file)
        parse_batch_endpoint(loc, partial=True)
        doc = dict(loc.data)
    apply_sets(doc, set_)
    if name is not None:
        doc["name"] = name
    if "name" not in doc:
        raise InvalidParameterValue("give the endpoint's name: -f FILE with name: or --name")
    with client(ctx) as http:
        e = http.post("/api/v1/batchEndpoints", {**doc, "source": str(file or "command line")})
    _show_endpoint(e, output_format(ctx, output))


@endpoint_app.command("list")
def list_endpoints(ctx: typer.Context, output: OutputOption = None) -> None:
    """List batch endpoints with their default deployment."""
    with client(ctx) as http:
        endpoints = http.get("/api/v1/batchEndpoints")["endpoints"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(endpoints)
        return
    table = Table("name", "state", "default deployment", "deployments", "created")
    for e in endpoints:
        table.add_row(
            f"[bold]{escape(e['name'])}[/bold]",
            e["provisioning_state"],
            escape((e.get("defaults") or {}).get("deployment_name") or "-"),
            escape(", ".join(e.get("deployments") or []) or "-"),
            fmt_time(e.get("created_at")),
        )
    console().print(table)


@endpoint_app.command("show")
@named(what="batch endpoint")
def show_endpoint(
    ctx: typer.Context, name: str, web: WebOption = False, output: OutputOption = None
) -> None:
    """Show a batch endpoint: default deployment, deployments, invoke URL, tags."""
    with client(ctx) as http:
        e = http.get(_path(name))
        if web:
            open_web(http, f"/batch-endpoints/{e['name']}")
    _show_endpoint(e, output_format(ctx, output))


@endpoint_app.command("update")
@named(what="batch endpoint")
def update_endpoint(
    ctx: typer.Context,
    name: str,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="YAML with the keys to change.")
    ] = None,
    default_deployment: Annotated[
        str | None,
        typer.Option("--default-deployment", "-d", help="Deployment used when none is named."),
    ] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    set_: SetOption = None,
    output: OutputOption = None,
) -> None:
    """Change the default deployment, description or tags of a batch endpoint
    (``--set defaults.deployment_name=blue`` as az ml takes it)."""
    doc: dict[str, Any] = {}
    if file is not None:
        loc = _load(file)
        parse_batch_endpoint(loc, partial=True)
        doc = dict(loc.data)
    apply_sets(doc, set_)
    if default_deployment is not None:
        doc["defaults"] = {**(doc.get("defaults") or {}), "deployment_name": default_deployment}
    if description is not None:
        doc["description"] = description
    if not doc:
        raise InvalidParameterValue(
            "nothing to change: give --default-deployment, --set, -f or --description"
        )
    with client(ctx) as http:
        e = http.request(
            "PATCH", _path(name), json_body={**doc, "source": str(file or "command line")}
        ).json()
    _show_endpoint(e, output_format(ctx, output))


@endpoint_app.command("delete")
@named(what="batch endpoint")
def delete_endpoint(
    ctx: typer.Context,
    name: str,
    yes: YesOption = False,
    output: OutputOption = None,
    no_wait: NoWaitOption = False,
) -> None:
    """Delete a batch endpoint and its deployments (its past jobs stay)."""
    what = f"batch endpoint '{name}' and its deployments"
    delete_and_report(ctx, what, _path(name), yes, output)


@endpoint_app.command("invoke")
@named(what="batch endpoint")
def invoke(
    ctx: typer.Context,
    name: str,
    input: Annotated[
        str,
        typer.Option(
            "--input",
            "-i",
            help="What to score: a folder or a file on this machine, or a file's http(s) URL.",
        ),
    ],
    input_type: Annotated[
        str | None,
        typer.Option(
            "--input-type",
            help="uri_folder or uri_file (default: uri_file for a file or a URL, "
            "uri_folder for a folder).",
        ),
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option(
            "--deployment-name",
            "--deployment",
            "-d",
            help="Deployment to use (default: the endpoint's default).",
        ),
    ] = None,
    stream: Annotated[
        bool, typer.Option("--stream", help="Follow the scoring job's log until it ends.")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Score every file of a folder (or one file): submits a job that writes predictions.csv."""
    with client(ctx) as http:
        try:  # a local folder or file goes to the default datastore first
            given, _kind = client_input(http, input, input_type)
        except InvalidParameterValue as exc:
            raise InvalidParameterValue(f"--input {exc}") from None
        body: dict[str, Any] = {"input": given}
        if input_type:
            body["input_type"] = input_type
        if deployment:
            body["deployment_name"] = deployment
        job = http.post(f"{_path(name)}/invoke", body)
        fmt = output_format(ctx, output)
        if stream:
            sys.stderr.write(f"Batch job {job['name']} submitted; streaming its log\n")
            job = _follow(http, job["name"], sys.stderr if fmt is OutputFormat.json else None)
    if fmt is OutputFormat.json:
        print_json(job)
    elif not stream:
        n = escape(job["name"])
        console().print(
            f"Submitted batch job [bold]{n}[/bold] ({_status(job['status'])}); follow it with "
            f"`lapis job stream {n}`, fetch predictions with "
            f"`lapis job download {n} --output-name score`"
        )
    else:
        console().print(
            f"Predictions: `lapis job download {escape(job['name'])} --output-name score`"
        )
    if stream and job["status"] != "Completed":
        raise typer.Exit(1)


def _follow(http: LapisHTTP, name: str, out: TextIO | None) -> dict[str, Any]:
    """``lapis job stream``'s loop; with ``-o json`` the log goes to stderr, the job to stdout."""
    if out is None:
        return _stream(http, name)

    def on_status(status: str, reason: str | None) -> None:
        sys.stderr.write(f"[{status}]" + (f" {reason}" if reason else "") + "\n")

    final = sdk_jobs.stream(http, name, out=out, on_status=on_status)
    sys.stderr.write(f"Job {name} ended: {final['status']}\n")
    return final


@endpoint_app.command("list-jobs")
@named(what="batch endpoint")
def list_jobs(
    ctx: typer.Context,
    name: str,
    max_results: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    output: OutputOption = None,
) -> None:
    """List a batch endpoint's invocations (its scoring jobs), newest first."""
    _list_jobs(ctx, name, None, max_results, output)


def _list_jobs(
    ctx: typer.Context,
    endpoint: str,
    deployment: str | None,
    max_results: int,
    output: OutputFormat | None,
) -> None:
    with client(ctx) as http:
        jobs = http.get(f"{_path(endpoint)}/jobs", max_results=max_results, deployment=deployment)[
            "jobs"
        ]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(jobs)
        return
    table = Table("job", "status", "deployment", "created", "duration", "note")
    for j in jobs:
        note = j.get("status_reason") or ""
        table.add_row(
            escape(j["name"]),
            _status(j["status"]),
            escape((j.get("tags") or {}).get("lapis.batch.deployment", "")),
            fmt_time(j.get("created_at")),
            fmt_duration(j.get("start_time"), j.get("end_time")),
            escape(note.splitlines()[0] if note and j["status"] != "Completed" else ""),
        )
    console().print(table)
