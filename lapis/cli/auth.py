"""``lapis auth …``: the local token, and who a token belongs to."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lapis.cli._common import OutputFormat, OutputOption, client, output_format, print_json, state
from lapis.sdk.connection import read_token

app = typer.Typer(help="Authentication: tokens and identities.", no_args_is_help=True)


@app.command("token")
def token(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Workspace folder (default $LAPIS_HOME or ~/.lapis)."),
    ] = None,
) -> None:
    """Print the token the local server wrote to credentials.json (for MLFLOW_TRACKING_TOKEN)."""
    typer.echo(read_token(home or state(ctx).home))


@app.command("whoami")
def whoami(ctx: typer.Context, output: OutputOption = None) -> None:
    """Show the user behind the current token, and which server answered."""
    with client(ctx) as http:
        me = http.get("/api/v1/whoami")
        url = http.url
    if output_format(ctx, output) is OutputFormat.json:
        print_json({**me, "url": url})
        return
    typer.echo(f"{me['name']} (role {me['role']}, user id {me['user_id']}) at {url}")
