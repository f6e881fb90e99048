"""Model versions with their tags, and the helpers the registry stores share.

Versions are numbered per registered model (max + 1). A deleted version stays
as a redacted row (``lifecycle_stage = 'deleted'``) so that its number is never
handed out again, which is what MLflow does and what anyone holding
``models:/name/3`` relies on.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from lapis.entities.registry import ModelVersion, Stage
from lapis.errors import LapisError, ResourceAlreadyExists, ResourceDoesNotExist
from lapis.store.sql.engine import Database
from lapis.store.sql.experiments import upsert
from lapis.store.sql.tables import (
    logged_model_tags,
    logged_models,
    model_version_tags,
    model_versions,
    registered_model_aliases,
    registered_models,
)
from lapis.util import now_ms

ACTIVE = "active"
DELETED = "deleted"
MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # on a logged model: the versions made from it
_CHUNK = 500  # keys per IN list: stays under SQLite's bound-parameter limit
_CREATE_RETRIES = 3
_REDACTED = {
    "lifecycle_stage": DELETED,
    "description": None,
    "user_id": None,
    "source": "REDACTED-SOURCE-PATH",
    "storage_location": None,
    "run_id": "REDACTED-RUN-ID",
    "run_link": "REDACTED-RUN-LINK",
    "status_message": None,
}

rm, mv = registered_models.c, model_versions.c


def model_not_found(name: str) -> ResourceDoesNotExist:
    return ResourceDoesNotExist(f"Registered Model with name={name} not found")


def version_not_found(name: str, version: object) -> ResourceDoesNotExist:
    return ResourceDoesNotExist(f"Model Version (name={name}, version={version}) not found")


def chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def require_model(conn: Connection, name: str) -> None:
    if conn.execute(select(rm.name).where(rm.name == name)).first() is None:
        raise model_not_found(name)


def touch_model(conn: Connection, model: str, now: int, **values: object) -> None:
    """Set ``values`` (``name=`` renames) and the last-updated time of ``model``."""
    res = conn.execute(
        update(registered_models).where(rm.name == model).values(last_updated_time=now, **values)
    )
    if res.rowcount == 0:
        raise model_not_found(model)


def _version(r: Any) -> ModelVersion:
    return ModelVersion(
        name=r.name,
        version=r.version,
        creation_timestamp=r.creation_time,
        last_updated_timestamp=r.last_updated_time,
        current_stage=r.current_stage,
        source=r.source,
        status=r.status,
        description=r.description,
        user_id=r.user_id,
        run_id=r.run_id,
        run_link=r.run_link,
        model_id=r.model_id,
        status_message=r.status_message,
        storage_location=r.storage_location,
    )


class ModelVersionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create_version(
        self,
        name: str,
        values: Mapping[str, object],
        tags: Mapping[str, str],
        *,
        version: int | None = None,
        source_for: Callable[[int], str] | None = None,
    ) -> int:
        """Insert ``version`` of ``name`` (default max+1; numbering counts deleted versions).

        The one writer of new versions, for MLflow's ``create_model_version`` and
        Lapis' own registrations alike. ``source_for`` names the source from the number
        when it depends on it (an upload's folder). Two writers on PostgreSQL may pick
        the same number; the loser's insert hits the primary key and is retried with
        the next one. An explicit ``version`` that exists raises ``ResourceAlreadyExists``.
        """
        for _ in range(_CREATE_RETRIES):
            now = now_ms()
            try:
                with self.db.write() as conn:
                    touch_model(conn, name, now)
                    number = version
                    if number is None:
                        last: int | None = conn.execute(
                            select(func.max(mv.version)).where(mv.name == name)
                        ).scalar_one()
                        number = int(last or 0) + 1
                    elif conn.execute(
                        select(mv.version).where(mv.name == name, mv.version == number)
                    ).first():
                        raise ResourceAlreadyExists(f"Model {name} already has a version {number}")
                    row = dict(values)
                    if source_for is not None and not row.get("source"):
                        row["source"] = source_for(number)
                    conn.execute(
                        insert(model_versions).values(
                            **row,
                            name=name,
                            version=number,
                            creation_time=now,
                            last_updated_time=now,
                            current_stage=Stage.NONE.value,
                            lifecycle_stage=ACTIVE,
                        )
                    )
                    if tags:
                        conn.execute(
                            insert(model_version_tags),
                            [
                                {"name": name, "version": number, "key": k, "value": v}
                                for k, v in tags.items()
                            ],
                        )
                    model_id = row.get("model_id")
                    if isinstance(model_id, str):
                        self._link_logged_model(conn, model_id, name, number)
                    return number
            except IntegrityError:
                if version is not None:
                    raise ResourceAlreadyExists(
                        f"Model {name} already has a version {version}"
                    ) from None
                continue
        raise LapisError(
            f"Model Version creation error (name={name}). Giving up after "
            f"{_CREATE_RETRIES} attempts."
        )

    def set_status(self, name: str, version: int, status: str) -> None:
        with self.db.write() as conn:
            self._touch_version(conn, name, version, status=status)

    def fail_pending(self, pending: str, failed: str, message: str) -> int:
        """Mark every version still in status ``pending`` as ``failed``, with why."""
        with self.db.write() as conn:
            done = conn.execute(
                update(model_versions)
                .where(model_versions.c.status == pending)
                .values(status=failed, status_message=message, last_updated_time=now_ms())
            )
        return int(done.rowcount or 0)

    @staticmethod
    def _link_logged_model(conn: Connection, model_id: str, name: str, version: int) -> None:
        """Record on the logged model which registered versions came from it, as MLflow does."""
        t = logged_model_tags.c
        if (
            conn.execute(
                select(logged_models.c.model_id).where(logged_models.c.model_id == model_id)
            ).first()
            is None
        ):
            return
        raw = conn.execute(
            select(t.value).where(t.model_id == model_id, t.key == MODEL_VERSIONS_TAG)
        ).scalar_one_or_none()
        try:
            linked: list[Any] = json.loads(raw) if raw else []
        except ValueError:
            linked = []
        entry = {"name": name, "version": version}
        if entry not in linked:
            linked.append(entry)
        upsert(
            conn,
            logged_model_tags,
            {"model_id": model_id, "key": MODEL_VERSIONS_TAG},
            json.dumps(linked),
        )

    def get_version(self, name: str, version: int, conn: Connection | None = None) -> ModelVersion:
        found = self.get_versions([(name, version)], conn)
        if not found:
            raise version_not_found(name, version)
        return found[0]

    def get_versions(
        self, keys: Sequence[tuple[str, int]], conn: Connection | None = None
    ) -> list[ModelVersion]:
        """Active versions with their tags and aliases, in the order asked."""
        if not keys:
            return []
        if conn is None:
            with self.db.read() as c:
                return self.get_versions(keys, c)
        by_key: dict[tuple[str, int], ModelVersion] = {}
        t, a = model_version_tags.c, registered_model_aliases.c
        aliases: dict[tuple[str, int], list[str]] = defaultdict(list)
        for chunk in chunks(list(dict.fromkeys((n, int(v)) for n, v in keys))):
            for r in conn.execute(
                select(model_versions).where(
                    tuple_(mv.name, mv.version).in_(chunk), mv.lifecycle_stage == ACTIVE
                )
            ):
                by_key[(r.name, r.version)] = _version(r)
            for r in conn.execute(
                select(t.name, t.version, t.key, t.value).where(
                    tuple_(t.name, t.version).in_(chunk)
                )
            ):
                if (r.name, r.version) in by_key:
                    by_key[(r.name, r.version)].tags[r.key] = r.value
            for r in conn.execute(
                select(a.name, a.version, a.alias)
                .where(tuple_(a.name, a.version).in_(chunk))
                .order_by(a.alias)
            ):
                aliases[(r.name, r.version)].append(r.alias)
        for key, found in aliases.items():
            if key in by_key:
                by_key[key].aliases = found
        return [by_key[k] for k in ((n, int(v)) for n, v in keys) if k in by_key]

    def require_version(self, conn: Connection, name: str, version: int) -> None:
        found = conn.execute(
            select(mv.version).where(
                mv.name == name, mv.version == version, mv.lifecycle_stage == ACTIVE
            )
        ).first()
        if found is None:
            raise version_not_found(name, version)

    def _touch_version(self, conn: Connection, name: str, version: int, **values: object) -> int:
        """Update an active version and its model's last-updated time; the time used."""
        now = now_ms()
        res = conn.execute(
            update(model_versions)
            .where(mv.name == name, mv.version == version, mv.lifecycle_stage == ACTIVE)
            .values(last_updated_time=now, **values)
        )
        if res.rowcount == 0:
            raise version_not_found(name, version)
        return now

    def update_version(self, name: str, version: int, description: str | None) -> None:
        with self.db.write() as conn:
            self._touch_version(conn, name, version, description=description)

    def transition(self, name: str, version: int, stage: Stage, archive_existing: bool) -> None:
        with self.db.write() as conn:
            now = self._touch_version(conn, name, version, current_stage=stage.value)
            if archive_existing:
                conn.execute(
                    update(model_versions)
                    .where(
                        mv.name == name,
                        mv.version != version,
                        mv.current_stage == stage.value,
                        mv.lifecycle_stage == ACTIVE,
                    )
                    .values(current_stage=Stage.ARCHIVED.value, last_updated_time=now)
                )
            touch_model(conn, name, now)

    def delete_version(self, name: str, version: int) -> None:
        """Redact the row and drop its aliases; its number stays taken."""
        with self.db.write() as conn:
            now = self._touch_version(conn, name, version, **_REDACTED)
            a = registered_model_aliases.c
            conn.execute(
                delete(registered_model_aliases).where(a.name == name, a.version == version)
            )
            touch_model(conn, name, now)

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        with self.db.write() as conn:
            self.require_version(conn, name, version)
            upsert(conn, model_version_tags, {"name": name, "version": version, "key": key}, value)

    def delete_version_tag(self, name: str, version: int, key: str) -> None:
        with self.db.write() as conn:
            self.require_version(conn, name, version)
            t = model_version_tags.c
            conn.execute(
                delete(model_version_tags).where(t.name == name, t.version == version, t.key == key)
            )

    def latest_version(self, name: str) -> int | None:
        with self.db.read() as conn:
            require_model(conn, name)
            found: int | None = conn.execute(
                # a version still uploading (or whose upload died) is never "latest"
                select(func.max(mv.version)).where(
                    mv.name == name, mv.lifecycle_stage == ACTIVE, mv.status == "READY"
                )
            ).scalar_one()
            return None if found is None else int(found)

    # --- lineage -------------------------------------------------------------
    def logged_model(self, model_id: str) -> tuple[str, str | None] | None:
        """``(artifact_location, source_run_id)`` of a logged model, if this workspace has it."""
        lm = logged_models.c
        with self.db.read() as conn:
            row = conn.execute(
                select(lm.artifact_location, lm.source_run_id).where(lm.model_id == model_id)
            ).first()
        return None if row is None else (row.artifact_location, row.source_run_id)
