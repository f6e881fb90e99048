"""Experiments and their tags."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from lapis.entities.tracking import Experiment
from lapis.errors import ResourceAlreadyExists, ResourceDoesNotExist
from lapis.store.sql.engine import Database
from lapis.store.sql.tables import experiment_tags, experiments, runs
from lapis.util import now_ms


def upsert(conn: Connection, table: object, keys: dict[str, object], value: str | None) -> None:
    """Set ``value`` on the row identified by ``keys`` (insert or update), on both dialects."""
    from sqlalchemy import Table

    assert isinstance(table, Table)
    where = [table.c[k] == v for k, v in keys.items()]
    res = conn.execute(update(table).where(*where).values(value=value))
    if res.rowcount == 0:
        conn.execute(insert(table).values(**keys, value=value))


class ExperimentStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        name: str,
        artifact_location: str | None,
        tags: dict[str, str],
        created_by: str | None,
        default_artifact_root: str,
        experiment_id: int | None = None,
    ) -> str:
        now = now_ms()
        try:
            with self.db.write() as conn:
                values: dict[str, object] = {
                    "name": name,
                    "artifact_location": artifact_location or "",
                    "lifecycle_stage": "active",
                    "creation_time": now,
                    "last_update_time": now,
                    "created_by": created_by,
                }
                if experiment_id is not None:
                    values["experiment_id"] = experiment_id
                exp_id = conn.execute(
                    insert(experiments).values(**values).returning(experiments.c.experiment_id)
                ).scalar_one()
                if not artifact_location:
                    conn.execute(
                        update(experiments)
                        .where(experiments.c.experiment_id == exp_id)
                        .values(artifact_location=f"{default_artifact_root.rstrip('/')}/{exp_id}")
                    )
                if tags:
                    conn.execute(
                        insert(experiment_tags),
                        [{"experiment_id": exp_id, "key": k, "value": v} for k, v in tags.items()],
                    )
        except IntegrityError as exc:
            raise ResourceAlreadyExists(
                f"Experiment(name={name}) already exists. Choose another name, or restore the "
                "deleted experiment of that name."
            ) from exc
        return str(exp_id)

    def get(self, experiment_id: int, conn: Connection | None = None) -> Experiment:
        found = self.get_many([experiment_id], conn)
        if not found:
            raise ResourceDoesNotExist(f"No Experiment with id={experiment_id} exists")
        return found[0]

    def get_by_name(self, name: str) -> Experiment | None:
        with self.db.read() as conn:
            exp_id = conn.execute(
                select(experiments.c.experiment_id).where(experiments.c.name == name)
            ).scalar_one_or_none()
            return None if exp_id is None else self.get(exp_id, conn)

    def get_many(self, ids: Sequence[int], conn: Connection | None = None) -> list[Experiment]:
        if conn is None:
            with self.db.read() as c:
                return self.get_many(ids, c)
        rows = conn.execute(select(experiments).where(experiments.c.experiment_id.in_(ids))).all()
        tag_map: dict[int, dict[str, str]] = defaultdict(dict)
        for t in conn.execute(
            select(experiment_tags).where(experiment_tags.c.experiment_id.in_(ids))
        ):
            tag_map[t.experiment_id][t.key] = t.value
        by_id = {
            r.experiment_id: Experiment(
                experiment_id=str(r.experiment_id),
                name=r.name,
                artifact_location=r.artifact_location,
                lifecycle_stage=r.lifecycle_stage,
                creation_time=r.creation_time,
                last_update_time=r.last_update_time,
                tags=tag_map.get(r.experiment_id, {}),
            )
            for r in rows
        }
        return [by_id[i] for i in ids if i in by_id]

    def _touch(self, conn: Connection, experiment_id: int, **values: object) -> None:
        res = conn.execute(
            update(experiments)
            .where(experiments.c.experiment_id == experiment_id)
            .values(last_update_time=now_ms(), **values)
        )
        if res.rowcount == 0:
            raise ResourceDoesNotExist(f"No Experiment with id={experiment_id} exists")

    def rename(self, experiment_id: int, new_name: str) -> None:
        try:
            with self.db.write() as conn:
                self._touch(conn, experiment_id, name=new_name)
        except IntegrityError as exc:
            raise ResourceAlreadyExists(
                f"Experiment(name={new_name}) already exists. Choose another name."
            ) from exc

    def set_stage(self, experiment_id: int, stage: str) -> None:
        """Delete or restore an experiment together with its runs, as MLflow does."""
        with self.db.write() as conn:
            self._touch(conn, experiment_id, lifecycle_stage=stage)
            conn.execute(
                update(runs)
                .where(runs.c.experiment_id == experiment_id)
                .values(
                    lifecycle_stage=stage,
                    deleted_time=now_ms() if stage == "deleted" else None,
                )
            )

    def set_tag(self, experiment_id: int, key: str, value: str | None) -> None:
        with self.db.write() as conn:
            self._touch(conn, experiment_id)
            upsert(conn, experiment_tags, {"experiment_id": experiment_id, "key": key}, value)

    def delete_tag(self, experiment_id: int, key: str) -> None:
        with self.db.write() as conn:
            res = conn.execute(
                delete(experiment_tags).where(
                    experiment_tags.c.experiment_id == experiment_id, experiment_tags.c.key == key
                )
            )
            if res.rowcount == 0:
                raise ResourceDoesNotExist(
                    f"No tag with name: {key} in experiment with id {experiment_id}"
                )

    def list_ids(self, stages: tuple[str, ...]) -> list[int]:
        with self.db.read() as conn:
            return list(
                conn.execute(
                    select(experiments.c.experiment_id)
                    .where(experiments.c.lifecycle_stage.in_(stages))
                    .order_by(experiments.c.experiment_id)
                ).scalars()
            )
