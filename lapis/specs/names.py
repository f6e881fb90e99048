"""Compute names, checked by Azure ML's rules with a message saying which rule failed.

The same function serves the API, the CLI and (later) the studio's as-you-type
check, so the three can never disagree about what a valid name is.
"""

from __future__ import annotations

import re

from lapis.errors import InvalidParameterValue

MIN_LENGTH, MAX_LENGTH = 3, 24
RULES = (
    f"{MIN_LENGTH}-{MAX_LENGTH} characters",
    "only letters, digits and '-'",
    "starts with a letter",
    "every '-' is followed by at least one letter",
)


def name_problem(name: str) -> str | None:
    """The first rule ``name`` breaks, in words, or None when it is valid."""
    if not MIN_LENGTH <= len(name) <= MAX_LENGTH:
        return f"must be {MIN_LENGTH} to {MAX_LENGTH} characters long (it has {len(name)})"
    bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c == "-"))})
    if bad:
        return f"may only contain letters, digits and '-' (found {' '.join(map(repr, bad))})"
    if not name[0].isalpha():
        return f"must start with a letter (it starts with '{name[0]}')"
    for m in re.finditer("-", name):
        if not re.match(r"-[0-9\-]*[A-Za-z]", name[m.start() :]):
            return f"has a '-' at position {m.start() + 1} that no letter follows"
    return None


def validate_compute_name(name: object) -> str:
    if not isinstance(name, str):
        raise InvalidParameterValue(f"Compute name must be a string, got {name!r}")
    problem = name_problem(name)
    if problem:
        raise InvalidParameterValue(
            f"Invalid compute name '{name}': it {problem}. Rules: {'; '.join(RULES)}.",
            field="name",
        )
    return name
