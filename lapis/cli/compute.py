"""``lapis compute …`` (skeleton; being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="compute", no_args_is_help=True)
