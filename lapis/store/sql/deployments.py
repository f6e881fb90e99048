"""Online deployments and their instance processes.

``online_deployments`` holds one row per deployment, keyed by the endpoint's
lower-case name and the deployment's lower-case name; ``spec`` is the checked
document plus what the server resolved (model version, code snapshot,
environment) as JSON. ``generation`` goes up whenever what an instance runs
changes, which is what a rollover rolls over to.

``deployment_instances`` records each instance process the server started
(pid and its start time, so that a later server can tell the process from an
unrelated one that reused the pid) and its state, for ``show`` and for the
clean-up a restarted server does.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from lapis.errors import ResourceAlreadyExists
from lapis.store.sql.engine import Database
from lapis.store.sql.serving_tables import deployment_instances as it
from lapis.store.sql.serving_tables import online_deployments as t


@dataclass
class OnlineDeployment:
    endpoint: str  # the endpoint's lower-case name
    name: str
    spec: dict[str, Any]
    provisioning_state: str
    created_at: int
    updated_at: int
    model_name: str | None = None
    model_version: str | None = None
    state_reason: str | None = None
    generation: int = 1
    created_by: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.endpoint, self.name.lower())


@dataclass
class InstanceRow:
    endpoint: str
    deployment: str  # lower-case
    idx: int
    generation: int
    state: str
    pid: int | None = None
    pid_start: int | None = None
    port: int | None = None
    restarts: int = 0
    started_at: int | None = None


def _from_row(row: Any) -> OnlineDeployment:
    return OnlineDeployment(
        endpoint=row.endpoint,
        name=row.name,
        spec=json.loads(row.spec),
        provisioning_state=row.provisioning_state,
        created_at=row.created_at,
        updated_at=row.updated_at,
        model_name=row.model_name,
        model_version=row.model_version,
        state_reason=row.state_reason,
        generation=row.generation,
        created_by=row.created_by,
    )


class DeploymentStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- deployments -----------------------------------------------------------------
    def insert(self, d: OnlineDeployment) -> None:
        message = f"Deployment '{d.name}' already exists on endpoint '{d.endpoint}'; use update"
        try:
            with self.db.write() as conn:
                found = conn.execute(
                    select(t.c.name).where(t.c.endpoint == d.endpoint, t.c.name_lower == d.key[1])
                ).first()
                if found:
                    raise ResourceAlreadyExists(message)
                conn.execute(
                    insert(t).values(
                        endpoint=d.endpoint,
                        name=d.name,
                        name_lower=d.key[1],
                        spec=json.dumps(d.spec),
                        model_name=d.model_name,
                        model_version=d.model_version,
                        provisioning_state=d.provisioning_state,
                        state_reason=d.state_reason,
                        generation=d.generation,
                        created_by=d.created_by,
                        created_at=d.created_at,
                        updated_at=d.updated_at,
                    )
                )
        except IntegrityError:
            raise ResourceAlreadyExists(message) from None

    def get(self, endpoint: str, name: str) -> OnlineDeployment | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(t).where(t.c.endpoint == endpoint.lower(), t.c.name_lower == name.lower())
            ).first()
        return _from_row(row) if row else None

    def list(self, endpoint: str | None = None) -> list[OnlineDeployment]:
        query = select(t).order_by(t.c.endpoint, t.c.name_lower)
        if endpoint is not None:
            query = query.where(t.c.endpoint == endpoint.lower())
        with self.db.read() as conn:
            return [_from_row(r) for r in conn.execute(query).all()]

    def by_model(self, model_name: str, model_version: str) -> builtins.list[OnlineDeployment]:
        query = select(t).where(t.c.model_name == model_name, t.c.model_version == model_version)
        with self.db.read() as conn:
            return [_from_row(r) for r in conn.execute(query.order_by(t.c.endpoint)).all()]

    def update(self, endpoint: str, name: str, **values: Any) -> None:
        if "spec" in values:
            values["spec"] = json.dumps(values["spec"])
        with self.db.write() as conn:
            conn.execute(
                update(t)
                .where(t.c.endpoint == endpoint.lower(), t.c.name_lower == name.lower())
                .values(**values)
            )

    def set_state(
        self, endpoint: str, name: str, generation: int, state: str, reason: str | None, now: int
    ) -> None:
        """Set the provisioning state, unless an update has moved to a newer generation."""
        with self.db.write() as conn:
            conn.execute(
                update(t)
                .where(
                    t.c.endpoint == endpoint,
                    t.c.name_lower == name.lower(),
                    t.c.generation == generation,
                )
                .values(provisioning_state=state, state_reason=reason, updated_at=now)
            )

    def delete(self, endpoint: str, name: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                delete(t).where(t.c.endpoint == endpoint.lower(), t.c.name_lower == name.lower())
            )

    # --- instances --------------------------------------------------------------------
    def instances(
        self, endpoint: str | None = None, deployment: str | None = None
    ) -> builtins.list[InstanceRow]:
        query = select(it).order_by(it.c.endpoint, it.c.deployment, it.c.generation, it.c.idx)
        if endpoint is not None:
            query = query.where(it.c.endpoint == endpoint.lower())
        if deployment is not None:
            query = query.where(it.c.deployment == deployment.lower())
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [
            InstanceRow(
                endpoint=r.endpoint,
                deployment=r.deployment,
                idx=r.idx,
                generation=r.generation,
                state=r.state,
                pid=r.pid,
                pid_start=r.pid_start,
                port=r.port,
                restarts=r.restarts,
                started_at=r.started_at,
            )
            for r in rows
        ]

    def save_instance(self, row: InstanceRow) -> None:
        """Insert or replace the row of one instance (endpoint, deployment, idx, generation)."""
        values = {
            "pid": row.pid,
            "pid_start": row.pid_start,
            "port": row.port,
            "state": row.state,
            "restarts": row.restarts,
            "started_at": row.started_at,
        }
        where = (
            it.c.endpoint == row.endpoint,
            it.c.deployment == row.deployment,
            it.c.idx == row.idx,
            it.c.generation == row.generation,
        )
        with self.db.write() as conn:
            if conn.execute(update(it).where(*where).values(**values)).rowcount == 0:
                conn.execute(
                    insert(it).values(
                        endpoint=row.endpoint,
                        deployment=row.deployment,
                        idx=row.idx,
                        generation=row.generation,
                        **values,
                    )
                )

    def delete_instance(self, endpoint: str, deployment: str, idx: int, generation: int) -> None:
        with self.db.write() as conn:
            conn.execute(
                delete(it).where(
                    it.c.endpoint == endpoint,
                    it.c.deployment == deployment,
                    it.c.idx == idx,
                    it.c.generation == generation,
                )
            )

    def delete_instances(self, endpoint: str | None = None, deployment: str | None = None) -> None:
        query = delete(it)
        if endpoint is not None:
            query = query.where(it.c.endpoint == endpoint.lower())
        if deployment is not None:
            query = query.where(it.c.deployment == deployment.lower())
        with self.db.write() as conn:
            conn.execute(query)
