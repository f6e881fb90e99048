"""Checks on registry input, with MLflow's limits and messages naming the culprit."""

from __future__ import annotations

import json
import posixpath
import re

from lapis.entities.registry import Stage
from lapis.errors import InvalidParameterValue
from lapis.tracking import validation as v

MAX_NAME_LENGTH = 256
MAX_ALIAS_LENGTH = 255
MAX_TAG_VALUE_LENGTH = 100_000
MAX_RUN_ID_LENGTH = 32
SEARCH_MODELS_MAX = 1000
SEARCH_VERSIONS_MAX = 200_000
LATEST = "latest"
_ALIAS_RE = re.compile(r"^[\w\-]*$")
_VERSION_ALIAS_RE = re.compile(r"^[vV]\d+$")


def invalid(name: str, value: object, why: str) -> InvalidParameterValue:
    return InvalidParameterValue(
        f"Invalid value {json.dumps(value)} for parameter '{name}' supplied: {why}"
    )


def validate_model_name(name: object, param: str = "name") -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameterValue(f"Missing value for required parameter '{param}'.")
    if "/" in name or ":" in name:
        raise InvalidParameterValue(
            f"Invalid model name '{name}'. Names cannot contain '/' or ':'."
        )
    norm = posixpath.normpath(name)
    if norm != name or norm == "." or norm.startswith(".."):
        raise invalid(
            param,
            name,
            "Names may be treated as files in certain cases, and must not resolve to other "
            f"names when treated as such. This name would resolve to '{norm}'",
        )
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidParameterValue(
            f"Registered model name '{name[:40]}...' had length {len(name)}, which exceeded "
            f"length limit of {MAX_NAME_LENGTH}"
        )
    return name


def validate_version(version: object) -> int:
    try:
        if isinstance(version, bool):
            raise ValueError
        number = version if isinstance(version, int) else int(str(version))
    except ValueError:
        raise InvalidParameterValue(
            f"Parameter 'version' must be an integer, got '{version}'."
        ) from None
    if not 0 <= number <= 2**31 - 1:
        raise InvalidParameterValue(
            f"Parameter 'version' must be a positive 32-bit integer, got '{version}'."
        )
    return number


def validate_alias(alias: object, reserved_check: bool = False) -> str:
    if not isinstance(alias, str) or alias == "":
        raise InvalidParameterValue("Registered model alias name cannot be empty.")
    if not _ALIAS_RE.fullmatch(alias):
        raise InvalidParameterValue(
            f"Invalid alias name: '{alias}'. Names may only contain alphanumerics, "
            "underscores (_), and dashes (-)."
        )
    if len(alias) > MAX_ALIAS_LENGTH:
        raise InvalidParameterValue(
            f"'Registered model alias name' exceeds the maximum length of {MAX_ALIAS_LENGTH} "
            "characters"
        )
    if reserved_check:
        if alias.lower() == LATEST:
            raise InvalidParameterValue("'latest' alias name (case insensitive) is reserved.")
        if _VERSION_ALIAS_RE.fullmatch(alias):
            raise InvalidParameterValue(f"Version alias name '{alias}' is reserved.")
    return alias


def validate_tag(key: object, value: object) -> tuple[str, str]:
    v.validate_key("tag", key)
    assert isinstance(key, str)
    text = "" if value is None else value if isinstance(value, str) else str(value)
    if len(text) > MAX_TAG_VALUE_LENGTH:
        raise InvalidParameterValue(
            f"'value' exceeds the maximum length of {MAX_TAG_VALUE_LENGTH} characters"
        )
    return key, text


def parse_stage(stage: object) -> Stage:
    found = Stage.parse(stage) if isinstance(stage, str) else None
    if found is None:
        raise InvalidParameterValue(
            f"Invalid Model Version stage: {stage}. Value must be one of "
            f"{', '.join(s.value for s in Stage)}."
        )
    return found


def check_max_results(max_results: int, limit: int) -> None:
    if max_results < 1:
        raise InvalidParameterValue(
            f"Invalid value for max_results. It must be a positive integer, but got {max_results}"
        )
    if max_results > limit:
        raise InvalidParameterValue(
            "Invalid value for request parameter max_results. It must be at most "
            f"{limit}, but got value {max_results}"
        )
