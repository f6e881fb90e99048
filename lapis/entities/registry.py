"""Model registry entities: registered models and their numbered versions.

Field names follow MLflow's wire names (``creation_timestamp``, ``current_stage``)
so ``lapis.registry.mlflow_compat`` copies them without renaming. Versions are
integers here and strings only on the MLflow wire, where the proto says so.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Stage(str, enum.Enum):
    """MLflow's (deprecated but still used) model version stages."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"

    @classmethod
    def parse(cls, text: str) -> Stage | None:
        """The canonical stage for ``text`` (case-insensitive), or None if unknown."""
        for stage in cls:
            if stage.value.lower() == text.strip().lower():
                return stage
        return None

    @property
    def is_active(self) -> bool:
        """Staging and Production are the stages ``archive_existing_versions`` applies to."""
        return self in (Stage.STAGING, Stage.PRODUCTION)


class ModelVersionStatus(str, enum.Enum):
    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    READY = "READY"


@dataclass(slots=True)
class ModelVersion:
    name: str
    version: int
    creation_timestamp: int
    last_updated_timestamp: int
    current_stage: str
    source: str
    status: str
    description: str | None = None
    user_id: str | None = None
    run_id: str | None = None
    run_link: str | None = None
    model_id: str | None = None
    status_message: str | None = None
    storage_location: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)


@dataclass(slots=True)
class RegisteredModel:
    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str | None = None
    created_by: str | None = None
    latest_versions: list[ModelVersion] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
