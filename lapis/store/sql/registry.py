"""Registered models with their tags and aliases.

The five registry tables share the model name as their key and have no
foreign keys between them, so a rename updates each table and a delete clears
each, always in one transaction. Versions live in ``model_versions.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from lapis.entities.registry import RegisteredModel
from lapis.errors import ResourceAlreadyExists
from lapis.store.sql.engine import Database
from lapis.store.sql.experiments import upsert
from lapis.store.sql.model_versions import (
    ACTIVE,
    ModelVersionStore,
    chunks,
    model_not_found,
    require_model,
    touch_model,
)
from lapis.store.sql.tables import (
    model_version_tags,
    model_versions,
    registered_model_aliases,
    registered_model_tags,
    registered_models,
)
from lapis.util import now_ms

rm, mv = registered_models.c, model_versions.c


def _already_exists(name: str) -> ResourceAlreadyExists:
    return ResourceAlreadyExists(f"Registered Model (name={name}) already exists.")


class RegistryStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.versions = ModelVersionStore(db)

    # --- registered models ----------------------------------------------------
    def create_model(
        self, name: str, description: str | None, tags: Mapping[str, str], created_by: str | None
    ) -> None:
        now = now_ms()
        try:
            with self.db.write() as conn:
                if conn.execute(select(rm.name).where(rm.name == name)).first() is not None:
                    raise _already_exists(name)
                conn.execute(
                    insert(registered_models).values(
                        name=name,
                        creation_time=now,
                        last_updated_time=now,
                        description=description,
                        created_by=created_by,
                    )
                )
                if tags:
                    conn.execute(
                        insert(registered_model_tags),
                        [{"name": name, "key": k, "value": v} for k, v in tags.items()],
                    )
        except IntegrityError as exc:  # a concurrent create won the race
            raise _already_exists(name) from exc

    def get_model(self, name: str, conn: Connection | None = None) -> RegisteredModel:
        found = self.get_models([name], conn)
        if not found:
            raise model_not_found(name)
        return found[0]

    def get_models(
        self, names: Sequence[str], conn: Connection | None = None
    ) -> list[RegisteredModel]:
        """Whole models (tags, aliases, latest version per stage) in the order asked."""
        if not names:
            return []
        if conn is None:
            with self.db.read() as c:
                return self.get_models(names, c)
        by_name: dict[str, RegisteredModel] = {}
        latest_keys: list[tuple[str, int]] = []
        for chunk in chunks(list(dict.fromkeys(names))):
            for r in conn.execute(select(registered_models).where(rm.name.in_(chunk))):
                by_name[r.name] = RegisteredModel(
                    name=r.name,
                    creation_timestamp=r.creation_time,
                    last_updated_timestamp=r.last_updated_time,
                    description=r.description,
                    created_by=r.created_by,
                )
            t = registered_model_tags.c
            for r in conn.execute(select(t.name, t.key, t.value).where(t.name.in_(chunk))):
                by_name[r.name].tags[r.key] = r.value
            a = registered_model_aliases.c
            for r in conn.execute(
                select(a.name, a.alias, a.version).where(a.name.in_(chunk)).order_by(a.alias)
            ):
                by_name[r.name].aliases[r.alias] = int(r.version)
            latest_keys.extend(
                (r[0], int(r[1]))
                for r in conn.execute(
                    select(mv.name, func.max(mv.version))
                    .where(mv.name.in_(chunk), mv.lifecycle_stage == ACTIVE)
                    .group_by(mv.name, mv.current_stage)
                )
            )
        for version in sorted(
            self.versions.get_versions(latest_keys, conn), key=lambda v: v.version
        ):
            by_name[version.name].latest_versions.append(version)
        return [by_name[n] for n in names if n in by_name]

    def update_model(self, name: str, description: str | None) -> None:
        with self.db.write() as conn:
            touch_model(conn, name, now_ms(), description=description)

    def rename_model(self, name: str, new_name: str) -> None:
        """Move the model, its versions, tags and aliases to ``new_name`` at once."""
        now = now_ms()
        try:
            with self.db.write() as conn:
                require_model(conn, name)
                if new_name == name:
                    touch_model(conn, name, now)
                    return
                if conn.execute(select(rm.name).where(rm.name == new_name)).first() is not None:
                    raise _already_exists(new_name)
                touch_model(conn, name, now, name=new_name)
                conn.execute(
                    update(model_versions)
                    .where(mv.name == name)
                    .values(name=new_name, last_updated_time=now)
                )
                for table in (registered_model_tags, registered_model_aliases, model_version_tags):
                    conn.execute(update(table).where(table.c.name == name).values(name=new_name))
        except IntegrityError as exc:
            raise _already_exists(new_name) from exc

    def delete_model(self, name: str) -> None:
        """Delete the model with all its versions, tags and aliases."""
        with self.db.write() as conn:
            require_model(conn, name)
            for table in (
                model_version_tags,
                registered_model_aliases,
                registered_model_tags,
                model_versions,
                registered_models,
            ):
                conn.execute(delete(table).where(table.c.name == name))

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        with self.db.write() as conn:
            require_model(conn, name)
            upsert(conn, registered_model_tags, {"name": name, "key": key}, value)

    def delete_model_tag(self, name: str, key: str) -> None:
        """A missing tag is not an error (MLflow's rule); a missing model is."""
        with self.db.write() as conn:
            require_model(conn, name)
            t = registered_model_tags.c
            conn.execute(delete(registered_model_tags).where(t.name == name, t.key == key))

    # --- aliases ---------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: int) -> None:
        with self.db.write() as conn:
            self.versions.require_version(conn, name, version)
            a = registered_model_aliases.c
            res = conn.execute(
                update(registered_model_aliases)
                .where(a.name == name, a.alias == alias)
                .values(version=version)
            )
            if res.rowcount == 0:
                conn.execute(
                    insert(registered_model_aliases).values(name=name, alias=alias, version=version)
                )

    def delete_alias(self, name: str, alias: str) -> None:
        with self.db.write() as conn:
            require_model(conn, name)
            a = registered_model_aliases.c
            conn.execute(delete(registered_model_aliases).where(a.name == name, a.alias == alias))

    def alias_version(self, name: str, alias: str) -> int | None:
        with self.db.read() as conn:
            require_model(conn, name)
            a = registered_model_aliases.c
            found = conn.execute(
                select(a.version).where(a.name == name, a.alias == alias)
            ).scalar_one_or_none()
            return None if found is None else int(found)
