"""``lapis job …``: submit command jobs written in Azure ML YAML and follow them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from lapis.cli._common import (
    OutputFormat,
    OutputOption,
    WebOption,
    client,
    console,
    fmt_duration,
    fmt_time,
    named,
    open_web,
    output_format,
    print_json,
)
from lapis.sdk import jobs as sdk_jobs

app = typer.Typer(
    help="Command jobs: a script, its code, environment and compute, run and recorded.",
    no_args_is_help=True,
)

_COLOURS = {
    "Completed": "green",
    "Failed": "red",
    "Canceled": "yellow",
    "CancelRequested": "yellow",
    "NotResponding": "red",
    "Running": "cyan",
    "Provisioning": "blue",
}


def _status(status: str) -> str:
    colour = _COLOURS.get(status, "blue")
    return f"[{colour}]{status}[/{colour}]"


def _err(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


@app.command("create")
def create(
    ctx: typer.Context,
    file: Annotated[Path, typer.Option("--file", "-f", help="Job YAML (Azure ML CLI v2 shape).")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a field: --set inputs.lr=0.1 (repeatable)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Job name (default: the file's or generated).")
    ] = None,
    stream: Annotated[
        bool, typer.Option("--stream", help="Follow the log until the job ends.")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Submit a job file; errors point at the file, line and key before anything runs."""
    overrides = list(set_ or [])
    if name:
        overrides.append(f"name={name}")
    with client(ctx) as http:
        job = sdk_jobs.submit_file(http, file, overrides)
        if not stream:
            if output_format(ctx, output) is OutputFormat.json:
                print_json(job)
            else:
                console().print(
                    f"Submitted job [bold]{escape(job['name'])}[/bold] to {escape(job['compute'])}"
                    f" ({_status(job['status'])}); follow it with "
                    f"`lapis job stream {escape(job['name'])}`"
                )
            return
        _err(f"Job {job['name']} submitted to {job['compute']}; streaming its log")
        final = _stream(http, job["name"])
    if output_format(ctx, output) is OutputFormat.json:
        print_json(final)
    if final["status"] != "Completed":
        raise typer.Exit(1)


def _stream(http: Any, name: str) -> dict[str, Any]:
    def on_status(status: str, reason: str | None) -> None:
        _err(f"[{status}]" + (f" {reason}" if reason else ""))

    final = sdk_jobs.stream(http, name, on_status=on_status)
    _err(
        f"Job {name} ended: {final['status']}"
        + (
            f" ({final['status_reason']})"
            if final.get("status_reason") and final["status"] != "Completed"
            else ""
        )
    )
    return final


@app.command("stream")
@named(what="job")
def stream_cmd(ctx: typer.Context, name: str) -> None:
    """Follow a job's log (environment build first, then the job's output) until it ends;
    of a pipeline, every step's status and log, each line prefixed with its step."""
    with client(ctx) as http:
        final = _stream(http, name)
    if final["status"] != "Completed":
        raise typer.Exit(1)


@app.command("logs")
@named(what="job")
def logs(ctx: typer.Context, name: str) -> None:
    """Print what the job has logged so far."""
    with client(ctx) as http:
        cursor = ""
        while True:
            page = http.get(f"/api/v1/jobs/{name}/logs", cursor=cursor or None)
            if not page["data"]:
                break
            sys.stdout.write(page["data"])
            cursor = page["cursor"]


@app.command("list")
def list_jobs(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="Only these statuses (comma-separated).")
    ] = None,
    compute: Annotated[str | None, typer.Option(help="Only jobs on this compute.")] = None,
    experiment: Annotated[str | None, typer.Option(help="Only jobs in this experiment.")] = None,
    max_results: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    output: OutputOption = None,
) -> None:
    """List jobs, newest first, with why each waiting job waits."""
    with client(ctx) as http:
        jobs = http.get(
            "/api/v1/jobs",
            status=status,
            compute=compute,
            experiment_name=experiment,
            max_results=max_results,
        )["jobs"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(jobs)
        return
    table = Table("name", "status", "compute", "experiment", "created", "duration", "note")
    for j in jobs:
        note = j["status_reason"] or ""
        table.add_row(
            escape(j["name"]),
            _status(j["status"]),
            escape(j["compute"]),
            escape(j.get("experiment_name") or ""),
            fmt_time(j["created_at"]),
            fmt_duration(j["start_time"], j["end_time"]),
            escape(note.splitlines()[0] if note else ""),
        )
    console().print(table)


@app.command("show")
@named(what="job")
def show(
    ctx: typer.Context, name: str, web: WebOption = False, output: OutputOption = None
) -> None:
    """A job's status and why, its timeline, compute, environment, code and inputs/outputs;
    a pipeline's steps; an interactive job's services (JupyterLab URL, ssh command)."""
    with client(ctx) as http:
        job = http.get(f"/api/v1/jobs/{name}")
        if job.get("type") == "pipeline":
            job["steps"] = http.get(f"/api/v1/jobs/{name}/steps")["steps"]
        if web:
            open_web(http, f"/jobs/{job['name']}")
    if output_format(ctx, output) is OutputFormat.json:
        print_json(job)
        return
    con = console()
    con.print(f"[bold]{escape(job['name'])}[/bold]  {_status(job['status'])}")
    if job["status_reason"] and job["status"] != "Completed":
        con.print(f"  {escape(job['status_reason'])}")
    code = job.get("code") or {}
    rows = [
        ("run id", job["run_id"]),
        ("experiment", job.get("experiment_name")),
        ("compute", job["compute"]),
        ("environment", job.get("environment")),
        ("image", job.get("image")),
        ("command", job.get("command")),
        ("code", f"{code['digest'][:12]} ({code.get('files')} files)" if code else None),
        (
            "git",
            f"{code.get('git_commit')}{' (dirty)' if code.get('git_dirty') else ''}"
            if code.get("git_commit")
            else None,
        ),
        ("exit code", job.get("exit_code")),
        ("created by", job.get("created_by")),
    ]
    for key, value in rows:
        if value is not None:
            con.print(f"  {key:<12} {escape(str(value))}")
    for kind in ("inputs", "outputs"):
        for k, v in (job.get(kind) or {}).items():
            v = v if isinstance(v, dict) else {"value": v}  # a pipeline's literal input
            shown = v.get("path") or v.get("value") or v.get("type")
            if v.get("uri") and v["uri"] != shown:
                shown = f"{shown} → {v['uri']}"
            extra = [f"{v['mode']}" if v.get("mode") and "path" in v else None,
                     f"asset {v['asset']}" if v.get("asset") else None,
                     f"registers {v['name']}" if v.get("name") else None]  # fmt: skip
            said = ", ".join(e for e in extra if e)
            con.print(
                f"  {kind[:-1]:<12} {escape(k)} = {escape(str(shown))}"
                + (f" [dim]({escape(said)})[/dim]" if said else "")
            )
    if job.get("services"):  # an interactive job's tools
        table = Table("service", "type", "status", "where", title="services")
        base = str(http.url).rstrip("/")
        for svc in job["services"]:
            where = svc.get("command") or (f"{base}{svc['url']}" if svc.get("url") else "")
            where = where or svc.get("note") or ""
            if svc["status"].startswith("Unavailable"):
                where = svc["status"].split(": ", 1)[-1]
            table.add_row(escape(svc["name"]), svc["type"],
                          _status(svc["status"].split(":")[0]), escape(where))  # fmt: skip
        con.print(table)
    if job.get("steps"):
        steps = Table("step", "status", "job", "after", "component", title="steps")
        for s in job["steps"]:
            status = _status(s["status"])
            if s.get("reused_from"):  # ran nothing: an earlier job's outputs stand in
                status += f" [cyan]reused[/cyan] [dim]from {escape(s['reused_from'])}[/dim]"
            steps.add_row(escape(s["name"]), status, escape(s["job"] or "-"),
                          escape(", ".join(s["after"]) or "-"), escape(s["component"]))  # fmt: skip
        con.print(steps)
    timeline = Table("status", "at", "for", "reason", title="timeline")
    events = job.get("events") or []
    for i, e in enumerate(events):
        end = events[i + 1]["time"] if i + 1 < len(events) else job.get("end_time")
        reason = (e.get("reason") or "").splitlines()
        timeline.add_row(
            _status(e["status"]),
            fmt_time(e["time"]),
            fmt_duration(e["time"], end) if end else "-",
            escape(reason[0] if reason else ""),
        )
    con.print(timeline)


@app.command("cancel")
@named(what="job")
def cancel(ctx: typer.Context, name: str, output: OutputOption = None) -> None:
    """Cancel a job: a queued one never starts; a running one has its whole process tree ended."""
    with client(ctx) as http:
        job = http.post(f"/api/v1/jobs/{name}/cancel")
    if output_format(ctx, output) is OutputFormat.json:
        print_json(job)
        return
    console().print(f"Job {escape(name)}: {_status(job['status'])}")


@app.command("download")
@named(what="job")
def download(
    ctx: typer.Context,
    name: str,
    download_path: Annotated[Path, typer.Option(help="Folder to write into.")] = Path("."),
    output_name: Annotated[
        str | None,
        typer.Option(
            help="Only this named output (named-outputs/<name>/); of a pipeline, also any "
            "step's as <step>.<output>."
        ),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Download a job's files like Azure: artifacts/ and named-outputs/<name>/."""
    with client(ctx) as http:
        written = sdk_jobs.download(http, name, download_path, output_name)
    if output_format(ctx, output) is OutputFormat.json:
        print_json([str(p) for p in written])
        return
    console().print(f"Downloaded {len(written)} file(s) of job {escape(name)} into {download_path}")
