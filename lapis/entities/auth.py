"""Principals: who is calling."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(str, enum.Enum):
    """Built-in roles. The RBAC issue maps each to allowed actions; today admin may do all."""

    ADMIN = "admin"
    CONTRIBUTOR = "contributor"
    READER = "reader"


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    name: str
    role: str
    token_id: str | None = None
