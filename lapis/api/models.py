"""Wire models of the model-registry routes (``/api/v1/models``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ModelVersionOut(BaseModel):
    """One registered version, with Azure's field names where they exist."""

    name: str
    version: int | str
    type: str
    path: str | None
    description: str | None
    tags: dict[str, str]
    properties: dict[str, str]
    archived: bool
    status: str | None
    status_message: str | None
    stage: str | None
    aliases: list[str]
    run_id: str | None
    job: str | None
    created_by: str | None
    created_at: int | None
    updated_at: int | None


class LineageJob(BaseModel):
    """The job that made the version; ``status`` is ``deleted`` when only its name is left."""

    name: str | None
    status: str | None
    compute: str | None
    experiment_id: str | None = None


class LineageEnvironment(BaseModel):
    name: str | None
    digest: str | None


class LineageDeployment(BaseModel):
    endpoint: str
    deployment: str
    provisioning_state: str | None


class Lineage(BaseModel):
    """job → its inputs and environment → this version → the deployments serving it."""

    run_id: str | None
    job: LineageJob | None
    inputs: dict[str, Any]  # as the job gave them: {"type", "path"} or {"value"}
    environment: LineageEnvironment | None
    deployments: list[LineageDeployment]


class ModelDetail(ModelVersionOut):
    lineage: Lineage


class ModelList(BaseModel):
    models: list[ModelVersionOut]


class ModelFile(BaseModel):
    path: str
    size: int | None


class ModelFiles(BaseModel):
    """``folder``: the name the files were registered under, which deployments keep
    (``$AZUREML_MODEL_DIR/<folder>/…``); ``None`` for a model that is one file."""

    root: str
    files: list[ModelFile]
    folder: str | None = None


class UploadedFile(BaseModel):
    path: str
    size: int


class WebhookDelivery(BaseModel):
    """One event sent (or being sent) to a registry webhook."""

    delivery_id: str
    event: str
    state: str  # pending, delivered, failed
    attempts: int
    next_attempt_at: int | None
    last_status: int | None
    last_error: str | None
    created_at: int
    updated_at: int


class WebhookDeliveries(BaseModel):
    webhook_id: str
    deliveries: list[WebhookDelivery]
