"""Components from the client: a component file's code is uploaded as a snapshot (and its
environment's files read here) before the server registers the version."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from lapis.sdk.connection import LapisHTTP
from lapis.sdk.jobs import code_and_environment
from lapis.specs.component import parse_component
from lapis.specs.yaml_lines import read_text_file


def create(http: LapisHTTP, path: Path) -> dict[str, Any]:
    """Register the component file at ``path`` (a new version, or the same one again)."""
    text = read_text_file(path, "component file")
    source = str(path)
    base_dir = path.parent.resolve()
    spec = parse_component(text, source, base_dir)  # checked here first: one line, no upload
    body = {"yaml": text, "source": source, **code_and_environment(http, spec, base_dir, source)}
    made: dict[str, Any] = http.post("/api/v1/components", body)
    return made


def show(http: LapisHTTP, name: str, version: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = http.get(
        f"/api/v1/components/{quote(name, safe='')}/versions/{quote(version or 'latest', safe='')}"
    )
    return found
