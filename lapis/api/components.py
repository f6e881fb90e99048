"""Wire models of the components API (``/api/v1/components``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ComponentIO(BaseModel):
    name: str
    type: str
    default: Any = None
    optional: bool = False
    min: int | float | None = None  # an integer input's range stays whole
    max: int | float | None = None
    enum: list[str] | None = None
    description: str | None = None


class ComponentOut(BaseModel):
    """One version of a component, in azure-ai-ml's names where it has them."""

    name: str
    version: str
    type: str
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, str] = {}
    is_deterministic: bool = True
    command: str
    environment: str
    code: str | None = None  # the snapshot's digest
    inputs: list[ComponentIO] = []
    outputs: list[ComponentIO] = []
    archived: bool = False
    created_by: str | None = None
    created_at: int
    updated_at: int
    id: str  # azureml:<name>:<version>


class ComponentList(BaseModel):
    components: list[ComponentOut]
