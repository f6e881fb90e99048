"""Online-endpoint YAML in Azure ML CLI v2's shape, checked with file:line messages.

A file written for ``az ml online-endpoint create -f`` loads here: ``name``,
``auth_mode``, ``description``, ``tags``, ``traffic`` and ``mirror_traffic``.
Keys Lapis does not implement are refused by name rather than ignored, and
an ``auth_mode`` other than ``key`` or ``aml_token`` is refused with the
supported values, because an endpoint that quietly authenticates differently
from what was asked is worse than an error. The same parser serves ``update`` with ``partial=True``.

Traffic is checked for shape only (whole percentages, summing to 100 or 0):
the deployment names it refers to are checked once deployments exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lapis.errors import InvalidParameterValue
from lapis.specs.yaml_lines import Located, check_settings, located

MIN_LENGTH, MAX_LENGTH = 3, 32
RULES = (
    f"{MIN_LENGTH}-{MAX_LENGTH} characters",
    "starts with a letter",
    "only letters, digits and '-'",
    "ends with a letter or digit",
)
AUTH_MODES = ("key", "aml_token")
UNSUPPORTED_AUTH = ("aad_token",)
MIRROR_MAX = 50  # Azure mirrors at most half of the live traffic
KEYS = {"$schema", "name", "auth_mode", "description", "tags", "traffic", "mirror_traffic"}


@dataclass
class EndpointSpec:
    """A checked endpoint document; ``given`` names the keys the user wrote."""

    name: str | None = None
    auth_mode: str = "key"
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    given: set[str] = field(default_factory=set)


def name_problem(name: str) -> str | None:
    """The first Azure naming rule ``name`` breaks, in words, or None when it is valid."""
    if not MIN_LENGTH <= len(name) <= MAX_LENGTH:
        return f"must be {MIN_LENGTH} to {MAX_LENGTH} characters long (it has {len(name)})"
    if not (name[0].isascii() and name[0].isalpha()):
        return f"must start with a letter (it starts with '{name[0]}')"
    bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c == "-"))})
    if bad:
        return f"may only contain letters, digits and '-' (found {' '.join(map(repr, bad))})"
    if name.endswith("-"):
        return "must end with a letter or digit (it ends with '-')"
    return None


def validate_endpoint_name(name: object) -> str:
    if not isinstance(name, str):
        raise InvalidParameterValue(f"Endpoint name must be a string, got {name!r}")
    problem = name_problem(name)
    if problem:
        raise InvalidParameterValue(
            f"Invalid endpoint name '{name}': it {problem}. Rules: {'; '.join(RULES)}.",
            field="name",
        )
    return name


def validate_auth_mode(mode: object) -> str:
    text = str(mode).lower() if mode is not None else ""
    if text in AUTH_MODES:
        return text
    if text in UNSUPPORTED_AUTH:
        raise InvalidParameterValue(
            f"auth_mode '{mode}' is not supported yet (it needs Microsoft Entra ID); "
            "use 'key' or 'aml_token'"
        )
    raise InvalidParameterValue(f"auth_mode must be 'key' or 'aml_token', got {mode!r}")


def validate_traffic(raw: object, what: str = "traffic") -> dict[str, int]:
    """Deployment name → whole percent 0 to 100; the total is 100 or 0 (mirror: at most 50)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidParameterValue(f"{what} must be a mapping of deployment: percent, got {raw!r}")
    out: dict[str, int] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not name:
            raise InvalidParameterValue(f"{what}: deployment names must be text, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
            raise InvalidParameterValue(
                f"{what}: '{name}' must be a whole percent from 0 to 100, got {value!r}"
            )
        out[name] = value
    total = sum(out.values())
    if what == "mirror_traffic":
        if total > MIRROR_MAX:
            raise InvalidParameterValue(
                f"mirror_traffic must total at most {MIRROR_MAX} percent, got {total}"
            )
    elif total not in (0, 100):
        shares = ", ".join(f"{k}={v}" for k, v in out.items())
        raise InvalidParameterValue(f"traffic must total 100 (or 0), got {total} ({shares})")
    return out


def parse_traffic_args(items: Iterable[str], what: str = "traffic") -> dict[str, int]:
    """``["blue=90", "green=10"]`` (or ``"blue=90 green=10"``) as a checked traffic mapping."""
    raw: dict[str, Any] = {}
    for item in items:
        for part in item.replace(",", " ").split():
            name, sep, value = part.partition("=")
            if not sep or not name:
                raise InvalidParameterValue(
                    f"--{what.replace('_', '-')} expects DEPLOYMENT=PERCENT, got {part!r}"
                )
            try:
                raw[name] = int(value)
            except ValueError:
                raise InvalidParameterValue(
                    f"{what}: '{name}' must be a whole percent from 0 to 100, got {value!r}"
                ) from None
    return validate_traffic(raw, what)


def _at(loc: Located, key: str, exc: InvalidParameterValue) -> InvalidParameterValue:
    return InvalidParameterValue(f"{loc.where((key,))}: {exc.message}", file=loc.source, key=key)


def parse_endpoint(doc: Mapping[str, Any] | Located, *, partial: bool = False) -> EndpointSpec:
    """Check an endpoint document; every complaint names the file, line and key."""
    loc = located(doc, "<endpoint>")
    data = check_settings(loc, KEYS, "online endpoint")
    spec = EndpointSpec(given={k for k in data if k != "$schema"})
    if "name" in data:
        try:
            spec.name = validate_endpoint_name(data["name"])
        except InvalidParameterValue as exc:
            raise _at(loc, "name", exc) from None
    elif not partial:
        raise loc.error(("name",), "is required (3-32 letters, digits or '-')")
    for key in ("auth_mode", "traffic", "mirror_traffic"):
        if key not in data:
            continue
        try:
            if key == "auth_mode":
                spec.auth_mode = validate_auth_mode(data[key])
            else:
                setattr(spec, key, validate_traffic(data[key], key))
        except InvalidParameterValue as exc:
            raise _at(loc, key, exc) from None
    if "description" in data:
        if data["description"] is not None and not isinstance(data["description"], str):
            raise loc.error(("description",), "must be a string")
        spec.description = data["description"]
    if "tags" in data:
        tags = data["tags"] or {}
        if not isinstance(tags, Mapping):
            raise loc.error(("tags",), f"must be a mapping of name: value, got {tags!r}")
        spec.tags = {str(k): "" if v is None else str(v) for k, v in tags.items()}
    return spec
