"""Reading JSON request bodies: one parser for every route that takes a JSON object.

Besides the syntax, two things are refused here with the field named, because
they would otherwise fail deep inside a store with a 500: NUL characters, which
PostgreSQL cannot keep in text (SQLite can, so the two stores would disagree),
and nesting deeper than any request of ours has, which makes recursive code
(reprs in error messages, JSON columns) overflow the stack. The NUL walk runs
only when the raw bytes contain an escaped NUL, so large metric batches pay one
byte search and nothing more.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from lapis.errors import InvalidParameterValue, MalformedRequest

MAX_DEPTH = 32


def _where(path: list[str]) -> str:
    return ".".join(path) or "the body"


def check_value(data: Any, raw: bytes | None = None) -> None:
    """Refuse NUL characters in strings and keys, and nesting past :data:`MAX_DEPTH`."""
    look_for_nul = raw is None or b"\\u0000" in raw
    stack: list[tuple[Any, list[str]]] = [(data, [])]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            raise InvalidParameterValue(
                f"{_where(path[:MAX_DEPTH])}: nested more than {MAX_DEPTH} levels deep"
            )
        if isinstance(value, dict):
            for key, item in value.items():
                if look_for_nul and "\x00" in key:
                    raise InvalidParameterValue(f"{_where(path)}: a key contains a NUL character")
                if isinstance(item, (dict, list)) or (look_for_nul and isinstance(item, str)):
                    stack.append((item, [*path, key]))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, (dict, list)) or (look_for_nul and isinstance(item, str)):
                    stack.append((item, [*path, f"[{i}]"] if path else [f"[{i}]"]))
        elif isinstance(value, str) and "\x00" in value:
            raise InvalidParameterValue(
                f"'{_where(path)}' contains a NUL character, which cannot be stored"
            )


def parse_object(raw: bytes, allow_empty: bool = True) -> dict[str, Any]:
    """A JSON object from raw bytes, or a 400 saying what is wrong with it."""
    if allow_empty and not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(f"Malformed JSON request body: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedRequest(f"Request body must be a JSON object, got {type(data).__name__}")
    check_value(data, raw)
    return data


async def json_object(request: Request, allow_empty: bool = True) -> dict[str, Any]:
    return parse_object(await request.body(), allow_empty)
