"""Small helpers the SDK's operation groups share."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lapis.specs.yaml_lines import read_text_file


def read(path: Path, what: str) -> str:
    return read_text_file(path, what)


def name_of(item: Any) -> str:
    """A name given as text or as an entity with a ``name``."""
    return item if isinstance(item, str) else str(item.name)


def q(name: str) -> str:
    return quote(name, safe="")


def jsonable(value: Any) -> Any:
    """YAML timestamps (a schedule's start_time) as ISO text, the way JSON carries them."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value
