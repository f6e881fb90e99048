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


@app.command("config-file")
def config_file(
    ctx: typer.Context,
    path: Annotated[Path, typer.Option("--path", help="Folder to write config.json in.")] = Path(
        "."
    ),
    with_token: Annotated[
        bool,
        typer.Option(
            "--with-token",
            help="Also write the current token (the file is then readable by you only). "
            "Leave it out for a file you commit: the SDK then uses LAPIS_TOKEN or the "
            "local workspace's credentials.",
        ),
    ] = False,
) -> None:
    """Write config.json naming this server, for MLClient.from_config() (as Azure's portal
    gives a workspace's config.json)."""
    import json
    import os

    with client(ctx) as http:
        me = http.get("/api/v1/whoami")  # proves the server answers and the token works
        url, token = http.url, http.token
    body = {"url": url, "workspace_name": url.split("//", 1)[-1], "user": me["name"]}
    if with_token:
        body["token"] = token or ""
    target = path.expanduser() / "config.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(target, flags, 0o600 if with_token else 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(body, indent=2) + "\n")
    if with_token:
        os.chmod(target, 0o600)
    typer.echo(f"Wrote {target} (MLClient.from_config() finds it from this folder and below)")
