"""``lapis compute …``: compute instances (named, pinned slices of this host) and ``local``.

A YAML file is checked here first, so a mistake is reported with its file and
line before anything is sent; the server checks again (names, sizes, this
host, quotas) because it alone knows what exists.
"""

from __future__ import annotations

import os
import shlex
import time
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

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
    named,
    open_web,
    output_format,
    print_json,
)
from lapis.cli.compute_view import _state, render
from lapis.errors import InvalidParameterValue, InvalidState
from lapis.specs.compute import parse_compute
from lapis.specs.yaml_lines import load, read_text_file

app = typer.Typer(
    help="Compute targets: 'local' (this host) and compute instances with their own cores, "
    "memory, idle shutdown and start/stop schedules.",
    no_args_is_help=True,
)

STABLE = {"Running", "Stopped", "Failed"}

FileOption = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="Compute YAML in Azure ML's format (type: computeinstance)."),
]
IdleOption = Annotated[
    int | None,
    typer.Option(
        "--idle-time-before-shutdown-minutes",
        help="Stop the instance after this many minutes without jobs (0: never), to free cores.",
    ),
]
WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait",
        help="Wait until the instance is Running or Stopped (up to 5 min); --no-wait (the "
        "default) returns at once, as az ml --no-wait does.",
    ),
]


def _path(name: str) -> str:
    return f"/api/v1/computes/{quote(name, safe='')}"


def _read_doc(file: Path) -> dict[str, Any]:
    """Load and check a compute YAML locally, so errors carry file:line."""
    text = read_text_file(file)
    loc = load(text, str(file))
    _read_token(loc, file)
    _read_scripts(loc, file)
    parse_compute(loc, partial=True)
    if not isinstance(loc.data, dict):
        raise InvalidParameterValue(f"{file}: must be a mapping of compute settings")
    return dict(_jsonable(loc.data))


def _read_scripts(loc: Any, file: Path) -> None:
    """``setup_scripts.*.path`` is read here, next to the file, and sent as its text."""
    scripts = loc.data.get("setup_scripts") if isinstance(loc.data, dict) else None
    if not isinstance(scripts, dict):
        return
    for kind, item in scripts.items():
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            continue
        path = Path(item["path"]).expanduser()
        path = path if path.is_absolute() else file.parent / path
        try:
            item["script_text"] = read_text_file(path, "setup script")
        except InvalidParameterValue as exc:
            raise loc.error(("setup_scripts", kind, "path"), exc.message) from None


def _read_token(loc: Any, file: Path) -> None:
    """An attached Ray cluster's ``token_file`` is read here, on the client, and sent as
    ``token``: the server never opens a file that a request names."""
    provider = loc.data.get("provider") if isinstance(loc.data, dict) else None
    if not isinstance(provider, dict) or "token_file" not in provider:
        return
    raw = provider["token_file"]
    path = Path(str(raw)).expanduser()
    if not path.is_absolute():
        path = file.parent / path
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise loc.error(("provider", "token_file"), f"cannot read {path}: {exc.strerror}") from None
    if not token:
        raise loc.error(("provider", "token_file"), f"{path} is empty")
    provider.pop("token_file")
    provider["token"] = token


def _jsonable(value: Any) -> Any:
    """YAML timestamps (a schedule's start_time) as ISO text, the way JSON can carry them."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def _wait(ctx: typer.Context, name: str, timeout: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with client(ctx) as http:
        while True:
            c: dict[str, Any] = http.get(_path(name))
            if c["state"] in STABLE or time.monotonic() > deadline:
                return c
            time.sleep(0.2)


def _summary(c: dict[str, Any], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        print_json(c)
        return
    line = Text.assemble((c["name"], "bold"), ": ", _state(c["state"]))
    if c.get("state_reason"):
        line.append(f" ({c['state_reason']})", style="dim")
    console().print(line)


@app.command("create")
def create(
    ctx: typer.Context,
    file: FileOption = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Name (overrides the file's).")
    ] = None,
    type_: Annotated[
        str | None,
        typer.Option("--type", "-t", help="computeinstance (default) or amlcompute (a cluster)."),
    ] = None,
    size: Annotated[
        str | None, typer.Option("--size", help="VM size; `lapis compute list-sizes` lists them.")
    ] = None,
    idle: IdleOption = None,
    description: Annotated[str | None, typer.Option("--description", help="Free text.")] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            help="Assign the instance to this user: only they can run jobs on it (default: you).",
        ),
    ] = None,
    ssh_key: Annotated[
        str | None,
        typer.Option(
            "--ssh-key-value",
            help="Instance: turn SSH on for this public key (the line of a .pub file, or "
            "@path/to/key.pub); fixed at creation.",
        ),
    ] = None,
    min_instances: Annotated[
        int | None, typer.Option("--min-instances", help="Cluster: nodes always up (default 0).")
    ] = None,
    max_instances: Annotated[
        int | None, typer.Option("--max-instances", help="Cluster: most nodes (default 1).")
    ] = None,
    idle_scale_down: Annotated[
        int | None,
        typer.Option(
            "--idle-time-before-scale-down",
            help="Cluster: seconds without jobs before nodes above the minimum go (default 120).",
        ),
    ] = None,
    wait: WaitOption = False,
    set_: SetOption = None,
    output: OutputOption = None,
) -> None:
    """Create a compute instance or a compute cluster from a YAML file or from options.

    An instance gets its size's cores of this host (the least used ones); a cluster
    (``--type amlcompute``) is a Ray cluster of 0..max nodes of its size. Both count
    against the size family's core quota (a cluster: max nodes x cores) until deleted.
    A cluster's nodes are local processes unless the file's ``provider:`` puts them on
    SSH hosts (``type: ssh``) or attaches a Ray cluster you run (``type: ray``, whose
    ``token_file`` is read here and sent; no quota is taken).
    """
    doc: dict[str, Any] = apply_sets(_read_doc(file) if file else {}, set_)
    overrides = {
        "name": name,
        "type": type_,
        "size": size,
        "description": description,
        "idle_time_before_shutdown_minutes": idle,
        "assigned_user": user,
        "min_instances": min_instances,
        "max_instances": max_instances,
        "idle_time_before_scale_down": idle_scale_down,
    }
    doc.update({k: v for k, v in overrides.items() if v is not None})
    if ssh_key is not None:
        key = ssh_key
        if key.startswith("@"):  # a .pub file, read here: the server never opens one
            key = Path(key[1:]).expanduser().read_text()
        doc["ssh_public_access_enabled"] = True
        doc["ssh_settings"] = {"ssh_key_value": key.strip()}
    if idle is not None:
        doc.pop("idle_time_before_shutdown", None)
    if not file:
        doc.setdefault("type", "computeinstance")
    source = str(file) if file else "command line"
    with client(ctx) as http:
        c = http.post("/api/v1/computes", {**doc, "source": source})
    if wait:
        c = _wait(ctx, c["name"])
    _summary(c, output_format(ctx, output))


@app.command("list")
def list_computes(ctx: typer.Context, output: OutputOption = None) -> None:
    """List computes: 'local' first, then instances with their state and size."""
    with client(ctx) as http:
        computes = http.get("/api/v1/computes")["computes"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(computes)
        return
    table = Table(title="Computes", title_justify="left")
    for col in ("Name", "Type", "State", "Size", "Cores", "Memory", "CPU set", "Next"):
        table.add_column(col)
    for c in computes:
        nxt = (c.get("idle_shutdown") or {}).get("note") or ""
        if c.get("next_schedule"):
            nxt = (nxt + "; " if nxt else "") + c["next_schedule"]["note"]
        table.add_row(
            Text(c["name"], style="bold"),
            c["type"],
            _state(c["state"]),
            c.get("size") or "-",
            str(c["cores"]),
            f"{c['memory_gib']:g} GiB",
            ",".join(map(str, c["cpu_set"])),
            nxt,
        )
    console().print(table)


@app.command("show")
@named(what="compute")
def show(
    ctx: typer.Context,
    name: str,
    web: WebOption = False,
    logs: Annotated[
        bool, typer.Option("--logs", help="Also print the setup scripts' output.")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Show a compute: state and why, size, pinned cores, when it will stop and what keeps
    it awake, its applications (an instance's JupyterLab), and its jobs."""
    with client(ctx) as http:
        c = http.get(_path(name))
        if web:
            open_web(http, f"/compute/{c['name']}")
        if logs:
            c["setup_log"] = http.get(f"{_path(name)}/logs")["setup_log"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(c)
        return
    render(c, str(http.url).rstrip("/"))
    if logs:
        console().rule("setup log")
        print(c["setup_log"] or "(no setup scripts have run)", end="")


@app.command("list-sizes")
def list_sizes(ctx: typer.Context, output: OutputOption = None) -> None:
    """VM sizes: cores, memory, GPUs, whether this host can give them, and quota left."""
    with client(ctx) as http:
        body = http.get("/api/v1/compute-sizes")
    if output_format(ctx, output) is OutputFormat.json:
        print_json(body["sizes"])
        return
    host = body.get("host") or {}
    table = Table(
        title=f"VM sizes (this host: {host.get('cores')} cores, {host.get('memory_gib')} GiB, "
        f"{host.get('gpus', 0)} GPUs)",
        title_justify="left",
    )
    for col in ("Name", "Cores", "Memory", "GPUs", "Category", "Family", "Fits host", "Quota left"):
        table.add_column(col)
    for s in body["sizes"]:
        q = s["quota"]
        fits = Text("yes", style="green") if s["fits_host"] else Text("no", style="red")
        if s["approval_required"]:
            fits = Text("needs approval", style="yellow")
        gpus = f"{s['gpus']} {s['gpu_type'] or ''}".strip() if s["gpus"] else "-"
        table.add_row(
            s["name"],
            str(s["cores"]),
            f"{s['memory_gib']:g} GiB",
            gpus,
            s["category"],
            s["family"],
            fits,
            f"{q['left']} of {q['limit']} cores",
        )
    console().print(table)


def _action(
    ctx: typer.Context, name: str, verb: str, wait: bool, output: OutputFormat | None
) -> None:
    with client(ctx) as http:
        c = http.post(f"{_path(name)}/{verb}")
    if wait:
        c = _wait(ctx, c["name"])
    _summary(c, output_format(ctx, output))


@app.command("start")
@named(what="compute")
def start(
    ctx: typer.Context, name: str, wait: WaitOption = False, output: OutputOption = None
) -> None:
    """Start a Stopped instance so its queued jobs run again."""
    _action(ctx, name, "start", wait, output)


@app.command("stop")
@named(what="compute")
def stop(
    ctx: typer.Context, name: str, wait: WaitOption = False, output: OutputOption = None
) -> None:
    """Stop an instance: running jobs finish, queued jobs wait; quota stays held."""
    _action(ctx, name, "stop", wait, output)


@app.command("restart")
@named(what="compute")
def restart(
    ctx: typer.Context, name: str, wait: WaitOption = False, output: OutputOption = None
) -> None:
    """Restart a Running instance once its running jobs end."""
    _action(ctx, name, "restart", wait, output)


@app.command("preempt")
@named(what="compute")
def preempt(
    ctx: typer.Context,
    name: str,
    node: Annotated[
        int | None, typer.Option("--node", help="The worker's number (default: a busy one)")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Pre-empt one node of a low-priority cluster now (a drill): its job is queued again."""
    with client(ctx) as http:
        path = f"{_path(name)}/preempt" + (f"?node={node}" if node is not None else "")
        done = http.post(path)
    if output_format(ctx, output) == "json":
        print_json(done)
    else:
        console().print(f"Pre-empted node {done['node']}; its job, if any, is queued again.")


@app.command("delete")
@named(what="compute")
def delete(
    ctx: typer.Context,
    name: str,
    yes: YesOption = False,
    output: OutputOption = None,
    no_wait: NoWaitOption = False,
) -> None:
    """Delete an instance with no running or queued jobs; its cores and quota are freed."""
    delete_and_report(ctx, f"compute '{name}'", _path(name), yes, output)


@app.command("update")
@named(what="compute")
def update(
    ctx: typer.Context,
    name: str,
    file: FileOption = None,
    idle: IdleOption = None,
    description: Annotated[str | None, typer.Option("--description", help="Free text.")] = None,
    min_instances: Annotated[
        int | None, typer.Option("--min-instances", help="Cluster: nodes always up.")
    ] = None,
    max_instances: Annotated[
        int | None, typer.Option("--max-instances", help="Cluster: most nodes.")
    ] = None,
    idle_scale_down: Annotated[
        int | None,
        typer.Option(
            "--idle-time-before-scale-down", help="Cluster: seconds without jobs before scale-down."
        ),
    ] = None,
    set_: SetOption = None,
    output: OutputOption = None,
) -> None:
    """Change description, tags, idle shutdown or schedules; a cluster's scale, live (size
    and SSH are fixed at creation)."""
    doc: dict[str, Any] = apply_sets(_read_doc(file) if file else {}, set_)
    for key, value in (
        ("min_instances", min_instances),
        ("max_instances", max_instances),
        ("idle_time_before_scale_down", idle_scale_down),
    ):
        if value is not None:
            doc[key] = value
    if idle is not None:
        doc.pop("idle_time_before_shutdown", None)
        doc["idle_time_before_shutdown_minutes"] = idle
    if description is not None:
        doc["description"] = description
    if not doc:
        raise InvalidParameterValue(
            "nothing to update: give -f FILE, --set, --idle-time-before-shutdown-minutes, "
            "--description, or a cluster's --min-instances/--max-instances/"
            "--idle-time-before-scale-down"
        )
    source = str(file) if file else "command line"
    with client(ctx) as http:
        c = http.request("PATCH", _path(name), json_body={**doc, "source": source}).json()
    _summary(c, output_format(ctx, output))


@app.command("connect-ssh")
@named(what="compute")
def connect_ssh(
    ctx: typer.Context,
    name: str,
    private_key_file_path: Annotated[
        Path | None,
        typer.Option(
            "--private-key-file-path", "-i", help="The private key of the instance's key."
        ),
    ] = None,
    print_only: Annotated[
        bool, typer.Option("--print", help="Print the ssh command instead of running it.")
    ] = False,
) -> None:
    """SSH into a compute instance created with SSH on (its user's key only): runs ``ssh``,
    or prints the command (for VS Code's Remote-SSH, add it as a host)."""
    with client(ctx) as http:
        c = http.get(_path(name))
    app_ = next((a for a in c.get("applications") or [] if a["name"] == "SSH"), None)
    if app_ is None:
        raise InvalidParameterValue(
            f"compute {c['name']} was created without SSH; SSH is fixed at creation: create an "
            "instance with --ssh-key-value (or ssh_public_access_enabled and ssh_settings)"
        )
    if app_["status"] != "Running" or not app_.get("command"):
        raise InvalidState(f"SSH on {c['name']} is {app_['status']}: start the instance first "
                           f"(lapis compute start -n {c['name']})")  # fmt: skip
    argv = shlex.split(app_["command"])
    if private_key_file_path is not None:
        argv[1:1] = ["-i", str(private_key_file_path.expanduser())]
    if print_only:
        print(shlex.join(argv))
        return
    os.execvp(argv[0], argv)
