"""Principals: who is calling, with what roles, and — for a job's token — how far it reaches."""

from __future__ import annotations

from dataclasses import dataclass

# Tag put on runs a job's token creates (nested runs): the job may write to them too.
JOB_TAG = "lapis.job"


@dataclass(frozen=True, slots=True)
class JobScope:
    """A job's token reaches its own run (and its experiment), nothing else."""

    job: str
    run_id: str
    experiment_id: str


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    name: str
    roles: tuple[str, ...] = ()
    token_id: str | None = None
    job: JobScope | None = None
    expires_at: int | None = None  # the token's, epoch ms

    @property
    def role(self) -> str:
        """The first role (for displays that show one)."""
        return self.roles[0] if self.roles else "(none)"


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    name: str
    display_name: str | None
    disabled: bool
    created_at: int
    created_by: str | None
    roles: tuple[str, ...]
    has_password: bool
    auth_source: str = "local"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    token_id: str
    user: str
    name: str
    created_at: int
    expires_at: int | None
    revoked: bool
    job: str | None
