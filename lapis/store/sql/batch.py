"""Batch endpoints and their deployments: two small tables, no invocation table.

An invocation is a job (tagged with the endpoint and deployment), so the job
tables hold its status, logs and outputs. Endpoints are found
case-insensitively through ``name_lower``; deployments are keyed by the
endpoint's lower-case name and their own lower-case name. ``spec`` holds the
checked document plus what the server resolved (model version, code
snapshot, environment) as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from lapis.errors import ResourceAlreadyExists, ResourceDoesNotExist
from lapis.store.sql.engine import Database
from lapis.store.sql.serving_tables import batch_deployments as dt
from lapis.store.sql.serving_tables import batch_endpoints as et


@dataclass
class BatchEndpoint:
    name: str
    created_at: int
    updated_at: int
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    default_deployment: str | None = None
    provisioning_state: str = "Succeeded"
    created_by: str | None = None


@dataclass
class BatchDeployment:
    endpoint: str  # the endpoint's lower-case name
    name: str
    spec: dict[str, Any]
    created_at: int
    updated_at: int
    model_name: str | None = None
    model_version: str | None = None
    provisioning_state: str = "Succeeded"
    created_by: str | None = None


def _endpoint(row: Any) -> BatchEndpoint:
    return BatchEndpoint(
        name=row.name,
        created_at=row.created_at,
        updated_at=row.updated_at,
        description=row.description,
        tags=json.loads(row.tags or "{}"),
        default_deployment=row.default_deployment,
        provisioning_state=row.provisioning_state,
        created_by=row.created_by,
    )


def _deployment(row: Any) -> BatchDeployment:
    return BatchDeployment(
        endpoint=row.endpoint,
        name=row.name,
        spec=json.loads(row.spec),
        created_at=row.created_at,
        updated_at=row.updated_at,
        model_name=row.model_name,
        model_version=row.model_version,
        provisioning_state=row.provisioning_state,
        created_by=row.created_by,
    )


class BatchStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- endpoints -------------------------------------------------------------------
    def insert_endpoint(self, e: BatchEndpoint) -> None:
        message = f"Batch endpoint '{e.name}' already exists"
        try:
            with self.db.write() as conn:
                if conn.execute(select(et.c.name).where(et.c.name_lower == e.name.lower())).first():
                    raise ResourceAlreadyExists(message)
                conn.execute(
                    insert(et).values(
                        name=e.name,
                        name_lower=e.name.lower(),
                        description=e.description,
                        tags=json.dumps(e.tags),
                        default_deployment=e.default_deployment,
                        provisioning_state=e.provisioning_state,
                        created_by=e.created_by,
                        created_at=e.created_at,
                        updated_at=e.updated_at,
                    )
                )
        except IntegrityError:  # a concurrent create of the same name
            raise ResourceAlreadyExists(message) from None

    def get_endpoint(self, name: str) -> BatchEndpoint | None:
        with self.db.read() as conn:
            row = conn.execute(select(et).where(et.c.name_lower == name.lower())).first()
        return _endpoint(row) if row else None

    def endpoints(self) -> list[BatchEndpoint]:
        with self.db.read() as conn:
            rows = conn.execute(select(et).order_by(et.c.name_lower)).all()
        return [_endpoint(r) for r in rows]

    def update_endpoint(self, name: str, **values: Any) -> None:
        if "tags" in values:
            values["tags"] = json.dumps(values["tags"])
        with self.db.write() as conn:
            conn.execute(update(et).where(et.c.name_lower == name.lower()).values(**values))

    def delete_endpoint(self, name: str) -> None:
        """The endpoint and all its deployments, in one transaction."""
        with self.db.write() as conn:
            conn.execute(delete(dt).where(dt.c.endpoint == name.lower()))
            conn.execute(delete(et).where(et.c.name_lower == name.lower()))

    # --- deployments -----------------------------------------------------------------
    def insert_deployment(self, d: BatchDeployment, make_default: bool) -> bool:
        """Insert ``d``; it becomes the endpoint's default when asked to, or when the
        endpoint has none (or names one that does not exist). Returns whether it did."""
        message = f"Deployment '{d.name}' already exists on batch endpoint '{d.endpoint}'"
        try:
            with self.db.write() as conn:
                found = conn.execute(
                    select(dt.c.name).where(
                        dt.c.endpoint == d.endpoint, dt.c.name_lower == d.name.lower()
                    )
                ).first()
                if found:
                    raise ResourceAlreadyExists(message)
                conn.execute(
                    insert(dt).values(
                        endpoint=d.endpoint,
                        name=d.name,
                        name_lower=d.name.lower(),
                        spec=json.dumps(d.spec),
                        model_name=d.model_name,
                        model_version=d.model_version,
                        provisioning_state=d.provisioning_state,
                        created_by=d.created_by,
                        created_at=d.created_at,
                        updated_at=d.updated_at,
                    )
                )
                current = conn.execute(
                    select(et.c.default_deployment).where(et.c.name_lower == d.endpoint)
                ).scalar_one_or_none()
                stale = (
                    bool(current)
                    and not conn.execute(
                        select(dt.c.name).where(
                            dt.c.endpoint == d.endpoint, dt.c.name_lower == str(current).lower()
                        )
                    ).first()
                )
                if make_default or not current or stale:
                    conn.execute(
                        update(et)
                        .where(et.c.name_lower == d.endpoint)
                        .values(default_deployment=d.name, updated_at=d.updated_at)
                    )
                    return True
                return False
        except IntegrityError:
            raise ResourceAlreadyExists(message) from None

    def replace_deployment(self, d: BatchDeployment) -> None:
        """Store a new spec for an existing deployment (``batch-deployment update``)."""
        with self.db.write() as conn:
            changed = conn.execute(
                update(dt)
                .where(dt.c.endpoint == d.endpoint, dt.c.name_lower == d.name.lower())
                .values(
                    spec=json.dumps(d.spec),
                    model_name=d.model_name,
                    model_version=d.model_version,
                    updated_at=d.updated_at,
                )
            ).rowcount
        if not changed:
            raise ResourceDoesNotExist(
                f"Batch endpoint '{d.endpoint}' has no deployment '{d.name}' to update"
            )

    def get_deployment(self, endpoint: str, name: str) -> BatchDeployment | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(dt).where(dt.c.endpoint == endpoint.lower(), dt.c.name_lower == name.lower())
            ).first()
        return _deployment(row) if row else None

    def deployments(self, endpoint: str) -> list[BatchDeployment]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(dt).where(dt.c.endpoint == endpoint.lower()).order_by(dt.c.name_lower)
            ).all()
        return [_deployment(r) for r in rows]

    def delete_deployment(self, endpoint: str, name: str, now: int) -> None:
        """Remove a deployment; the endpoint's default is cleared when it named this one."""
        with self.db.write() as conn:
            conn.execute(
                delete(dt).where(dt.c.endpoint == endpoint.lower(), dt.c.name_lower == name.lower())
            )
            row = conn.execute(
                select(et.c.default_deployment).where(et.c.name_lower == endpoint.lower())
            ).first()
            if row and row[0] and row[0].lower() == name.lower():
                conn.execute(
                    update(et)
                    .where(et.c.name_lower == endpoint.lower())
                    .values(default_deployment=None, updated_at=now)
                )
