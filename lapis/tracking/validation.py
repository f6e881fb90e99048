"""Checks on what users log, with MLflow's limits and messages naming the culprit."""

from __future__ import annotations

import logging
import os
import posixpath
import re

from lapis.errors import InvalidParameterValue

MAX_KEY_LENGTH = 250
log = logging.getLogger("lapis.tracking")
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 256
MAX_ID = 2**31 - 1
_KEY_RE = re.compile(r"^[/\w.\- :]*$")


def no_nul(what: str, text: str) -> str:
    """NUL cannot be kept in PostgreSQL text; refused on every store so they agree."""
    if "\x00" in text:
        raise InvalidParameterValue(f"{what} contains a NUL character, which cannot be stored")
    return text


def validate_key(kind: str, key: object) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidParameterValue(
            f"Invalid {kind} name: {key!r}. Names must be non-empty strings."
        )
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidParameterValue(
            f"{kind.capitalize()} name '{key[:40]}...' had length {len(key)}, which exceeded "
            f"length limit of {MAX_KEY_LENGTH}"
        )
    if not _KEY_RE.match(key):
        raise InvalidParameterValue(
            f"Invalid {kind} name: '{key}'. Names may only contain alphanumerics, underscores (_), "
            "dashes (-), periods (.), spaces ( ), colons (:) and slashes (/)."
        )
    norm = posixpath.normpath(key)
    if norm != key.rstrip("/") or norm.startswith(("/", "..")) or key.startswith("/"):
        raise InvalidParameterValue(
            f"Invalid {kind} name: '{key}'. Names may be treated as files in certain cases, "
            "and must not resolve to other names when treated as such."
        )
    return key


def validate_param(key: object, value: object) -> tuple[str, str]:
    validate_key("param", key)
    if value is None:
        raise InvalidParameterValue(f"Missing value for param '{key}'")
    text = no_nul(f"Param '{key}'", value if isinstance(value, str) else str(value))
    return str(key), _truncated("Param value", MAX_PARAM_VALUE_LENGTH, text)


def validate_tag(key: object, value: object) -> tuple[str, str]:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidParameterValue(
            f"Invalid tag name: {key!r}. Tag names must be 1 to {MAX_KEY_LENGTH} characters."
        )
    no_nul("A tag name", key)
    text = "" if value is None else (value if isinstance(value, str) else str(value))
    no_nul(f"Tag '{key}'", text)
    return key, _truncated("Tag value", MAX_TAG_VALUE_LENGTH, text)


def _truncated(what: str, limit: int, text: str) -> str:
    """A value over the limit is cut to it with a warning in the server log, as MLflow's
    server does (``MLFLOW_TRUNCATE_LONG_VALUES``, on by default), so a script's
    ``log_param`` or ``set_tag`` goes on; with it set to false, a 400 instead."""
    if len(text) <= limit:
        return text
    if os.environ.get("MLFLOW_TRUNCATE_LONG_VALUES", "true").strip().lower() in ("false", "0"):
        raise InvalidParameterValue(
            f"{what} '{text[:100]}...' had length {len(text)}, which exceeded length limit "
            f"of {limit}"
        )
    log.warning(
        "%s '%s...' (%d characters) is truncated to %d characters to meet the length limit",
        what,
        text[:100],
        len(text),
        limit,
    )
    return text[:limit]


def validate_experiment_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameterValue(
            f"Invalid experiment name: {name!r}. Experiment names must be non-empty strings."
        )
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise InvalidParameterValue(
            f"Experiment name had length {len(name)}, which exceeded length limit of "
            f"{MAX_EXPERIMENT_NAME_LENGTH}"
        )
    return no_nul("The experiment name", name)


def parse_experiment_id(value: object) -> int:
    from lapis.errors import ResourceDoesNotExist

    try:
        number = int(str(value))
    except (TypeError, ValueError):
        raise ResourceDoesNotExist(f"No Experiment with id={value} exists") from None
    if not 0 <= number <= MAX_ID:  # ids are 32-bit integers in every store
        raise ResourceDoesNotExist(f"No Experiment with id={value} exists")
    return number
