"""``lapis job …`` (skeleton; being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="job", no_args_is_help=True)
