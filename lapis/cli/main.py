"""The ``lapis`` console script.

Typer itself answers usage errors (exit code 2), ``--help`` and ``Exit``;
whatever else escapes a command is caught in ``main()`` so that every failure
ends the same way: one red line on stderr and exit code 1 — a LapisError from
the server or the SDK, an unreachable server, or anything unexpected.
``LAPIS_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from lapis.cli import (
    access,
    auth,
    batch,
    batch_deployment,
    component,
    compute,
    data,
    datastore,
    endpoint,
    environment,
    experiment,
    file,
    job,
    model,
    run,
    schedule,
    webhook,
)
from lapis.cli import deployment as online_deployment
from lapis.cli._common import RENDER, CliState, OutputFormat
from lapis.cli.server import server_command
from lapis.errors import LapisError
from lapis.version import __version__

app = typer.Typer(
    name="lapis",
    help="Lapis: a self-hosted machine-learning workspace (MLflow-compatible tracking).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # lapis --install-completion (bash, zsh, fish, PowerShell)
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("server")(server_command)
app.add_typer(experiment.app, name="experiment")
app.add_typer(run.app, name="run")
app.add_typer(auth.app, name="auth")
app.add_typer(job.app, name="job")
app.add_typer(compute.app, name="compute")
app.add_typer(environment.app, name="environment")
app.add_typer(datastore.app, name="datastore")
app.add_typer(data.app, name="data")
app.add_typer(component.app, name="component")
app.add_typer(file.app, name="file")
app.add_typer(schedule.app, name="schedule")
app.add_typer(model.app, name="model")
app.add_typer(webhook.app, name="webhook")
app.add_typer(endpoint.app, name="online-endpoint")
app.add_typer(batch.endpoint_app, name="batch-endpoint")
app.add_typer(batch_deployment.deployment_app, name="batch-deployment")
app.add_typer(online_deployment.app, name="online-deployment")
app.add_typer(access.user_app, name="user")
app.add_typer(access.token_app, name="token")
app.add_typer(access.role_app, name="role")
app.add_typer(access.audit_app, name="audit")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lapis {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    output: Annotated[
        OutputFormat,
        typer.Option(
            "--output",
            "-o",
            help="Output for every command: table, json, yaml, tsv or none. Every command also "
            "takes --query JMESPATH (as az does) to pick from its answer.",
        ),
    ] = OutputFormat.table,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="Workspace folder whose server and token to use (default $LAPIS_HOME, ~/.lapis).",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Lapis: a self-hosted machine-learning workspace (MLflow-compatible tracking)."""
    ctx.obj = CliState(output=output, home=home)


def _fail(message: str, code: int = 1) -> None:
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    err.print(f"[bold red]Error:[/bold red] {escape(message)}")
    sys.exit(code)


def take_query(argv: list[str]) -> tuple[list[str], str | None]:
    """``--query EXPR`` (or ``--query=EXPR``) out of the arguments, wherever it stands, as
    ``az`` accepts it on every command; the rest goes to Typer."""
    rest: list[str] = []
    query: str | None = None
    args = iter(argv)
    for arg in args:
        if arg == "--":
            rest.append(arg)
            rest.extend(args)
            break
        if arg == "--query":
            query = next(args, None)
            if query is None:
                _fail("--query needs a JMESPath expression, e.g. --query scoring_uri")
        elif arg.startswith("--query="):
            query = arg[len("--query=") :]
        else:
            rest.append(arg)
    return rest, query


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``lapis`` script (see the module docstring)."""
    import httpx

    debug = os.environ.get("LAPIS_DEBUG") not in (None, "", "0")
    argv, RENDER.query = take_query(list(sys.argv[1:] if argv is None else argv))
    try:
        app(args=argv, prog_name="lapis")
    except LapisError as exc:
        if debug:
            raise
        _fail(exc.message)
    except httpx.HTTPError as exc:
        if debug:
            raise
        _fail(f"request to the Lapis server failed: {exc.__class__.__name__}: {exc}")
    except OSError as exc:
        if debug:
            raise
        _fail(str(exc))
    except Exception as exc:
        if debug:
            raise
        _fail(f"unexpected {exc.__class__.__name__}: {exc} (set LAPIS_DEBUG=1 for the traceback)")


if __name__ == "__main__":
    main()
