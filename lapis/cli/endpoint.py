"""``lapis online-endpoint …``: online endpoints (deployments: ``lapis online-deployment``).

A YAML file is checked here first, so a mistake is reported with its file and
line before anything is sent; the server checks again because it alone knows
which names are taken. ``--traffic`` takes Azure's ``blue=90 green=10`` form,
quoted as one argument or not.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer
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
    named,
    open_web,
    output_format,
    print_json,
)
from lapis.errors import InvalidParameterValue, LapisError
from lapis.specs.endpoint import parse_endpoint, parse_traffic_args
from lapis.specs.yaml_lines import load, read_text_file

app = typer.Typer(
    help="Online endpoints: a scoring URL with keys and a traffic split across deployments.",
    no_args_is_help=True,
)

FileOption = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="Endpoint YAML in Azure ML's format."),
]


def _path(name: str) -> str:
    return f"/api/v1/endpoints/{quote(name, safe='')}"


def _read_doc(file: Path) -> dict[str, Any]:
    """Load and check an endpoint YAML locally, so errors carry file:line."""
    text = read_text_file(file)
    loc = load(text, str(file))
    parse_endpoint(loc, partial=True)
    if not isinstance(loc.data, dict):
        raise InvalidParameterValue(f"{file}: must be a mapping of endpoint settings")
    return dict(loc.data)


def _split(traffic: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in traffic.items()) or "-"


def _summary(e: dict[str, Any], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        print_json(e)
        return
    line = Text.assemble((e["name"], "bold"), ": ", (e["provisioning_state"], "green"))
    line.append(f"  {e['scoring_uri']}", style="dim")
    console().print(line)


@app.command("create")
def create(
    ctx: typer.Context,
    file: FileOption = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Name (overrides the file's).")
    ] = None,
    set_: SetOption = None,
    output: OutputOption = None,
    no_wait: NoWaitOption = False,
) -> None:
    """Create an online endpoint from a YAML file; its primary and secondary keys are issued."""
    doc: dict[str, Any] = apply_sets(_read_doc(file) if file else {}, set_)
    if name is not None:
        doc["name"] = name
    if "name" not in doc:
        raise InvalidParameterValue("give the endpoint's name: -f FILE with name: or --name")
    source = str(file) if file else "command line"
    with client(ctx) as http:
        e = http.post("/api/v1/endpoints", {**doc, "source": source})
    _summary(e, output_format(ctx, output))


@app.command("list")
def list_endpoints(ctx: typer.Context, output: OutputOption = None) -> None:
    """List online endpoints with their traffic split."""
    with client(ctx) as http:
        endpoints = http.get("/api/v1/endpoints")["endpoints"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(endpoints)
        return
    table = Table(title="Online endpoints", title_justify="left")
    for col in ("Name", "State", "Auth", "Traffic", "Scoring URI"):
        table.add_column(col)
    for e in endpoints:
        table.add_row(
            Text(e["name"], style="bold"),
            e["provisioning_state"],
            e["auth_mode"],
            _split(e["traffic"]),
            e["scoring_uri"],
        )
    console().print(table)


@app.command("show")
@named(what="endpoint")
def show(
    ctx: typer.Context, name: str, web: WebOption = False, output: OutputOption = None
) -> None:
    """Show an endpoint: scoring_uri, traffic, mirror_traffic, auth mode, tags."""
    with client(ctx) as http:
        e = http.get(_path(name))
        if web:
            open_web(http, f"/endpoints/{e['name']}")
        if output_format(ctx, output) is OutputFormat.json:
            print_json(e)
            return
        try:
            metrics: dict[str, Any] | None = http.get(f"{_path(name)}/metrics", window=300)
        except LapisError:
            metrics = None  # a server without telemetry: show the rest
    rows: list[tuple[str, Any]] = [
        ("name", Text(e["name"], style="bold")),
        ("provisioning_state", e["provisioning_state"]),
        ("auth_mode", e["auth_mode"]),
        ("scoring_uri", e["scoring_uri"]),
        ("traffic", _split(e["traffic"])),
        ("mirror_traffic", _split(e["mirror_traffic"])),
    ]
    for d in e.get("deployments") or []:
        count = d["instance_count"]
        rows.append(
            (
                f"deployment {d['name']}",
                f"{d['provisioning_state']}, model {d['model']}, "
                f"{count} instance{'s' if count != 1 else ''}",
            )
        )
    if e.get("description"):
        rows.append(("description", e["description"]))
    if e.get("tags"):
        rows.append(("tags", ", ".join(f"{k}={v}" for k, v in e["tags"].items())))
    rows.append(("created", f"{fmt_time(e.get('created_at'))} by {e.get('created_by') or '-'}"))
    if metrics is not None:
        rows.append(("requests", _traffic_line(metrics["totals"])))
        for dep, figures in metrics["deployments"].items():
            rows.append((f"  {dep}", _traffic_line(figures)))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan")
    grid.add_column()
    for label, value in rows:
        grid.add_row(label, value)
    console().print(grid)


def _traffic_line(figures: dict[str, Any]) -> str:
    """Telemetry in one line: totals since the server started, latency of the last 5 min."""
    line = f"{figures['requests']} ({figures['errors']} errors"
    if figures.get("mirrored"):
        line += f", {figures['mirrored']} mirrored"
    line += ")"
    recent = figures.get("recent", {})
    latency = recent.get("latency_ms", {})
    if recent.get("requests"):
        line += (
            f"; last 5 min {recent['rps']} req/s, p50 {latency['p50']} ms, p99 {latency['p99']} ms"
        )
    states = figures.get("instance_states")
    if states:
        line += "; instances " + ", ".join(f"{n} {state}" for state, n in states.items() if n)
    return line


@app.command("update", context_settings={"allow_extra_args": True})
@named(what="endpoint")
def update(
    ctx: typer.Context,
    name: str,
    file: FileOption = None,
    traffic: Annotated[
        list[str] | None,
        typer.Option("--traffic", help="New split, e.g. --traffic blue=90 green=10."),
    ] = None,
    mirror: Annotated[
        list[str] | None,
        typer.Option("--mirror-traffic", help="Copy a share of requests, e.g. green=10."),
    ] = None,
    description: Annotated[str | None, typer.Option("--description", help="Free text.")] = None,
    set_: SetOption = None,
    output: OutputOption = None,
) -> None:
    """Change traffic, mirror traffic, description or tags of an endpoint."""
    extra = list(ctx.args)
    if extra and traffic is None and mirror is None:
        raise InvalidParameterValue(f"unexpected arguments: {' '.join(extra)}")
    if extra and traffic is not None and mirror is not None:
        raise InvalidParameterValue(
            "with both --traffic and --mirror-traffic, quote each split: "
            "--traffic 'blue=90 green=10'"
        )
    doc: dict[str, Any] = apply_sets(_read_doc(file) if file else {}, set_)
    # ``--traffic blue=90 green=10``: the shares after the first arrive as extra arguments
    if traffic is not None:
        doc["traffic"] = parse_traffic_args([*traffic, *(extra if mirror is None else [])])
    if mirror is not None:
        extra_mirror = extra if traffic is None else []
        doc["mirror_traffic"] = parse_traffic_args([*mirror, *extra_mirror], "mirror_traffic")
    if description is not None:
        doc["description"] = description
    if not doc:
        raise InvalidParameterValue(
            "nothing to update: give -f FILE, --traffic, --mirror-traffic or --description"
        )
    source = str(file) if file else "command line"
    with client(ctx) as http:
        e = http.request("PATCH", _path(name), json_body={**doc, "source": source}).json()
    _summary(e, output_format(ctx, output))


@app.command("get-credentials")
@named(what="endpoint")
def get_credentials(ctx: typer.Context, name: str, output: OutputOption = None) -> None:
    """Print the endpoint's primaryKey and secondaryKey, or for an aml_token endpoint a
    fresh accessToken (valid an hour; ask again after refreshAfterTimeUtc)."""
    with client(ctx) as http:
        keys = http.post(f"{_path(name)}/listKeys")
    if output_format(ctx, output) is OutputFormat.json:
        print_json(keys)
        return
    if "accessToken" in keys:
        expires = datetime.fromtimestamp(keys["expiryTimeUtc"], tz=UTC).isoformat()
        console().print(f"accessToken:   {keys['accessToken']}\nexpires (UTC): {expires}")
        return
    console().print(f"primaryKey:   {keys['primaryKey']}\nsecondaryKey: {keys['secondaryKey']}")


@app.command("invoke")
@named(what="endpoint")
def invoke(
    ctx: typer.Context,
    name: str,
    request_file: Annotated[
        Path,
        typer.Option("--request-file", "-r", help="The request body to send (a JSON file)."),
    ],
    deployment: Annotated[
        str | None,
        typer.Option(
            "--deployment-name",
            "--deployment",
            "-d",
            help="Send to this deployment, bypassing the traffic split "
            "(the azureml-model-deployment header).",
        ),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Score a request: POST the file to the endpoint's scoring URI with the endpoint key."""
    try:
        body = request_file.read_bytes()
    except OSError as exc:
        raise InvalidParameterValue(f"cannot read {request_file}: {exc.strerror}") from None
    with client(ctx) as http:
        found = http.post(f"{_path(name)}/listKeys")  # a fresh token for aml_token
        key = found.get("accessToken") or found["primaryKey"]
        url = http.url
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if deployment:
        headers["azureml-model-deployment"] = deployment
    try:
        resp = httpx.post(f"{url}{_path(name)}/score", content=body, headers=headers, timeout=300)
    except httpx.HTTPError as exc:
        raise LapisError(f"cannot reach the scoring URI of '{name}' at {url}: {exc}") from None
    if resp.status_code >= 300:
        raise LapisError(_invoke_error(name, resp))
    if output_format(ctx, output) is OutputFormat.json:
        try:
            print_json(resp.json())
            return
        except ValueError:
            pass
    typer.echo(resp.text)


def _invoke_error(name: str, resp: httpx.Response) -> str:
    """One line: status, the error (the proxy's or the instance's) and the request id."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    error = resp.text.strip()[:300] or resp.reason_phrase
    if isinstance(data, dict):
        error = str(data.get("message") or data.get("error") or error)
    where = resp.headers.get("azureml-model-deployment")
    target = f"'{name}'" + (f" (deployment {where})" if where else "")
    request_id = resp.headers.get("x-request-id") or "-"
    return f"scoring {target} failed: HTTP {resp.status_code}: {error} [request id {request_id}]"


@app.command("regenerate-keys")
@named(what="endpoint")
def regenerate_keys(
    ctx: typer.Context,
    name: str,
    key_type: Annotated[
        str, typer.Option("--key-type", help="Which key to replace: primary or secondary.")
    ] = "primary",
    output: OutputOption = None,
) -> None:
    """Replace one key; callers using the other key are not interrupted."""
    if key_type.lower() not in ("primary", "secondary"):
        raise InvalidParameterValue(f"--key-type must be primary or secondary, got {key_type!r}")
    with client(ctx) as http:
        body = http.post(f"{_path(name)}/regenerateKeys", {"keyType": key_type.capitalize()})
    if output_format(ctx, output) is OutputFormat.json:
        print_json(body)
        return
    console().print(f"Regenerated the {key_type.lower()} key of '{name}'.")


@app.command("delete")
@named(what="endpoint")
def delete(
    ctx: typer.Context,
    name: str,
    yes: YesOption = False,
    output: OutputOption = None,
    no_wait: NoWaitOption = False,
) -> None:
    """Delete an online endpoint; its keys stop working at once."""
    delete_and_report(ctx, f"online endpoint '{name}'", _path(name), yes, output)
