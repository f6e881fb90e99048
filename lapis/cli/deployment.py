"""``lapis online-deployment …``: the processes behind an online endpoint.

The YAML is checked here first, so a mistake is reported with its file and
line before anything is uploaded. Then what the server cannot read from this
machine is sent ahead: the ``code`` folder as a snapshot (skipped when the
server already holds that digest), an inline model ``path`` registered as a
model version of ``<endpoint>-<deployment>`` (a new one only when its files
changed), an environment given
as a file or with a conda file path read in. ``create`` and ``update`` wait,
with a status line, until the deployment is ``Succeeded`` or ``Failed``
(``--no-wait`` returns at once).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lapis.cli._common import (
    OutputFormat,
    OutputOption,
    client,
    console,
    fmt_time,
    output_format,
    print_json,
)
from lapis.endpoints.deployment_spec import parse_deployment
from lapis.errors import InvalidParameterValue
from lapis.jobs.snapshot import digest_files, pack, take_snapshot
from lapis.jobs.yaml_lines import Located, load
from lapis.sdk.connection import LapisHTTP
from lapis.sdk.jobs import _environment_file
from lapis.sdk.models import upload_model

app = typer.Typer(
    help="Online deployments: model, code and environment served by instance processes.",
    no_args_is_help=True,
)

FINAL = ("Succeeded", "Failed")
CONTENT_TAG = "content_digest"  # on an inline model's versions: the sha256 of its files
FileOption = Annotated[
    Path, typer.Option("--file", "-f", help="Deployment YAML in Azure ML's format.")
]
EndpointOption = Annotated[
    str, typer.Option("--endpoint-name", "-e", help="The endpoint the deployment belongs to.")
]
NameOption = Annotated[str, typer.Option("--name", "-n", help="The deployment's name.")]
WaitOption = Annotated[
    bool,
    typer.Option("--wait/--no-wait", help="Wait until the deployment is Succeeded or Failed."),
]


def _path(endpoint: str, name: str | None = None) -> str:
    base = f"/api/v1/endpoints/{quote(endpoint, safe='')}/deployments"
    return f"{base}/{quote(name, safe='')}" if name else base


def _load(file: Path, endpoint: str | None, name: str | None) -> tuple[Located, str]:
    try:
        text = file.read_text()
    except OSError as exc:
        raise InvalidParameterValue(f"cannot read {file}: {exc.strerror}") from None
    loc = load(text, str(file))
    if isinstance(loc.data, dict):
        loc.data.update({k: v for k, v in (("name", name), ("endpoint_name", endpoint)) if v})
    spec = parse_deployment(loc)
    target = endpoint or spec.endpoint_name
    if not target:
        raise InvalidParameterValue(
            f"{file}: give the endpoint: endpoint_name in the file or --endpoint-name"
        )
    return loc, target


def _prepare(http: LapisHTTP, loc: Located, endpoint: str) -> dict[str, Any]:
    """The request body: the document plus the uploads the server cannot do itself."""
    spec = parse_deployment(loc)
    base = Path(loc.source).resolve().parent
    doc: dict[str, Any] = dict(loc.data)
    body: dict[str, Any] = {"source": loc.source}
    if spec.code is not None and spec.scoring_script is not None:
        code = (base / spec.code).resolve()
        if not (code / spec.scoring_script).is_file():
            raise loc.error(
                ("code_configuration", "scoring_script"),
                f"'{spec.scoring_script}' is not in the code folder {code}",
            )
        snap = take_snapshot(code)
        if not http.exists(f"/api/v1/snapshots/{snap.digest}"):
            http.request("PUT", f"/api/v1/snapshots/{snap.digest}", content=pack(snap))
        body["code_snapshot"] = snap.digest
    env = spec.environment
    if env is not None and env.kind == "file":
        body["environment_file"] = _environment_file(base, str(env.name), loc.source)
    elif env is not None and env.kind == "inline":
        conda = env.conda_file
        if isinstance(conda, str) and "\n" not in conda:
            try:
                body["conda_file_text"] = (base / conda).read_text()
            except OSError as exc:
                raise loc.error(
                    ("environment", "conda_file"), f"cannot read {base / conda}: {exc.strerror}"
                ) from None
    model = spec.model
    if model is not None and model.path is not None:
        local = (base / model.path).resolve()
        if not local.exists():
            raise loc.error(("model", "path"), f"'{model.path}' does not exist ({local})")
        doc["model"] = _inline_model(http, f"{endpoint}-{spec.name}", model.type, local, loc)
    return {**doc, **body}


def _inline_model(http: LapisHTTP, name: str, mtype: str, local: Path, loc: Located) -> str:
    """Register an inline model's files, or re-use the version already holding the same bytes
    (so that ``update -f`` with unchanged files does not roll the instances over)."""
    if local.is_file():
        digest = digest_files(local.parent, [local.name])
    else:
        rels = [p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()]
        digest = digest_files(local, rels)
    for v in http.get("/api/v1/models", name=name)["models"]:
        if v["tags"].get(CONTENT_TAG) == digest and v["status"] == "READY":
            return f"azureml:{v['name']}:{v['version']}"
    spec = {
        "name": name,
        "type": mtype,
        "description": f"registered from {loc.source} (an inline model of a deployment)",
        "tags": {CONTENT_TAG: digest},
    }
    registered = upload_model(http, spec, local)
    return f"azureml:{registered['name']}:{registered['version']}"


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _wait(http: LapisHTTP, endpoint: str, name: str, verb: str) -> dict[str, Any]:
    """Poll until Succeeded or Failed, with a status line on stderr."""
    d: dict[str, Any] = http.get(_path(endpoint, name))
    with _err().status(f"{verb} {name}…") as status:
        while d["provisioning_state"] not in FINAL:
            ready = sum(
                1 for i in d["instances"] if i["ready"] and i["generation"] == d["generation"]
            )
            status.update(
                f"{verb} deployment {escape(name)}: {d['provisioning_state']}, "
                f"{ready}/{d['instance_count']} instance(s) ready"
            )
            time.sleep(0.5)
            d = http.get(_path(endpoint, name))
    return d


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
        typer.Option("--endpoint-name", "-e", help="Endpoint (overrides the file's)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Deployment name (overrides the file's).")
    ] = None,
    all_traffic: Annotated[
        bool, typer.Option("--all-traffic", help="Send 100% of the endpoint's traffic here.")
    ] = False,
    wait: WaitOption = True,
    output: OutputOption = None,
) -> None:
    """Create a deployment from a YAML file and wait until its instances are ready."""
    loc, endpoint = _load(file, endpoint_name, name)
    with client(ctx) as http:
        body = _prepare(http, loc, endpoint)
        if all_traffic:
            body["all_traffic"] = True
        d = http.post(_path(endpoint), body)
        if wait:
            d = _wait(http, endpoint, d["name"], "Creating")
    _finish(ctx, d, output)


def _set_pairs(items: list[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidParameterValue(f"--set expects key=value, got {item!r}")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    return out


@app.command("update")
def update(
    ctx: typer.Context,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Deployment YAML in Azure ML's format.")
    ] = None,
    endpoint_name: Annotated[
        str | None, typer.Option("--endpoint-name", "-e", help="Endpoint (overrides the file's).")
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
            body = _prepare(http, loc, endpoint)
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
    output: OutputOption = None,
) -> None:
    """Show a deployment: state and reason, model, settings and each instance."""
    with client(ctx) as http:
        d = http.get(_path(endpoint_name, name))
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
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    output: OutputOption = None,
) -> None:
    """Delete a deployment and stop its instances (refused while it receives traffic)."""
    if not yes:
        typer.confirm(f"Delete deployment '{name}' of endpoint '{endpoint_name}'?", abort=True)
    with client(ctx) as http:
        body = http.request("DELETE", _path(endpoint_name, name)).json()
    if output_format(ctx, output) is OutputFormat.json:
        print_json(body)
        return
    console().print(f"Deleted deployment '{body['name']}' of '{endpoint_name}'.")


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
