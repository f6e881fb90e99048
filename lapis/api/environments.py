"""Wire models of the environment routes (``/api/v1/environments``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class BuildStatus(BaseModel):
    status: str | None  # Building, Succeeded, Failed
    error: str | None
    log_path: str | None
    python: str | None
    path: str | None
    started_at: int | None
    finished_at: int | None


class EnvironmentOut(BaseModel):
    name: str
    version: str
    kind: str  # "built" (conda/pip through uv) or "system" (image only: Lapis' interpreter)
    description: str | None
    image: str | None
    conda_file: str | None
    spec: dict[str, Any]  # the canonical spec the digest is computed over
    digest: str | None
    tags: dict[str, Any]
    curated: bool
    archived: bool
    created_at: int | None
    created_by: str | None
    build: BuildStatus | None
    # curated: the Azure ML curated environments this one stands in for (example names)
    azure_names: list[str] = []
    # resolved from an Azure name: which (``AzureML-sklearn-1.5@latest``) and how it differs
    stands_in_for: str | None = None
    note: str | None = None


class EnvironmentList(BaseModel):
    environments: list[EnvironmentOut]


class BuildResult(BaseModel):
    """One build: ``cache_hit`` when the content-hashed environment was already there."""

    name: str
    version: str
    kind: str
    status: str
    cache_hit: bool
    seconds: float
    digest: str | None = None
    path: str | None = None
    python: str | None = None
    log_path: str | None = None
    message: str | None = None
