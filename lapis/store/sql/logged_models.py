"""MLflow 3 logged models: the model a run produced, with its params and tags."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, delete, insert, select, update

from lapis.entities.tracking import LoggedModel, Metric
from lapis.errors import ResourceDoesNotExist
from lapis.store.sql.engine import Database
from lapis.store.sql.experiments import upsert
from lapis.store.sql.tables import (
    logged_model_params,
    logged_model_tags,
    logged_models,
    model_metrics,
)
from lapis.util import now_ms


class LoggedModelStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, model: LoggedModel) -> None:
        with self.db.write() as conn:
            conn.execute(
                insert(logged_models).values(
                    model_id=model.model_id,
                    experiment_id=int(model.experiment_id),
                    name=model.name,
                    artifact_location=model.artifact_location,
                    creation_timestamp=model.creation_timestamp,
                    last_updated_timestamp=model.last_updated_timestamp,
                    status=model.status,
                    lifecycle_stage=model.lifecycle_stage,
                    model_type=model.model_type,
                    source_run_id=model.source_run_id,
                )
            )
            self._params(conn, model.model_id, model.params)
            for k, v in model.tags.items():
                upsert(conn, logged_model_tags, {"model_id": model.model_id, "key": k}, v)

    @staticmethod
    def _params(conn: Connection, model_id: str, new: Mapping[str, str]) -> None:
        for k, v in new.items():
            res = conn.execute(
                update(logged_model_params)
                .where(logged_model_params.c.model_id == model_id, logged_model_params.c.key == k)
                .values(value=v)
            )
            if res.rowcount == 0:
                conn.execute(insert(logged_model_params).values(model_id=model_id, key=k, value=v))

    def get_many(self, ids: Sequence[str], conn: Connection | None = None) -> list[LoggedModel]:
        if not ids:
            return []
        if conn is None:
            with self.db.read() as c:
                return self.get_many(ids, c)
        rows = conn.execute(select(logged_models).where(logged_models.c.model_id.in_(ids))).all()
        params: dict[str, dict[str, str]] = defaultdict(dict)
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        for mid, k, v in conn.execute(
            select(
                logged_model_params.c.model_id,
                logged_model_params.c.key,
                logged_model_params.c.value,
            ).where(logged_model_params.c.model_id.in_(ids))
        ):
            params[mid][k] = v
        for mid, k, v in conn.execute(
            select(
                logged_model_tags.c.model_id, logged_model_tags.c.key, logged_model_tags.c.value
            ).where(logged_model_tags.c.model_id.in_(ids))
        ):
            tags[mid][k] = v
        points: dict[str, list[Metric]] = defaultdict(list)
        for r in conn.execute(select(model_metrics).where(model_metrics.c.model_id.in_(ids))):
            value = float("nan") if r.is_nan else r.value
            points[r.model_id].append(
                Metric(
                    r.key,
                    value,
                    r.timestamp,
                    r.step,
                    r.run_uuid,
                    r.model_id,
                    r.dataset_name,
                    r.dataset_digest,
                )
            )
        by_id = {
            r.model_id: LoggedModel(
                model_id=r.model_id,
                experiment_id=str(r.experiment_id),
                name=r.name,
                artifact_location=r.artifact_location,
                creation_timestamp=r.creation_timestamp,
                last_updated_timestamp=r.last_updated_timestamp,
                status=r.status,
                status_message=r.status_message,
                lifecycle_stage=r.lifecycle_stage,
                model_type=r.model_type,
                source_run_id=r.source_run_id,
                params=params.get(r.model_id, {}),
                tags=tags.get(r.model_id, {}),
                metrics=points.get(r.model_id, []),
            )
            for r in rows
        }
        return [by_id[i] for i in ids if i in by_id]

    def get(self, model_id: str) -> LoggedModel:
        found = self.get_many([model_id])
        if not found:
            raise ResourceDoesNotExist(f"Logged model with ID '{model_id}' not found.")
        return found[0]

    def ids_in(self, experiment_ids: Sequence[int], stage: str = "active") -> list[str]:
        with self.db.read() as conn:
            return list(
                conn.execute(
                    select(logged_models.c.model_id)
                    .where(
                        logged_models.c.experiment_id.in_(list(experiment_ids)),
                        logged_models.c.lifecycle_stage == stage,
                    )
                    .order_by(logged_models.c.creation_timestamp.desc(), logged_models.c.model_id)
                ).scalars()
            )

    def update(self, model_id: str, **values: object) -> None:
        with self.db.write() as conn:
            res = conn.execute(
                update(logged_models)
                .where(logged_models.c.model_id == model_id)
                .values(last_updated_timestamp=now_ms(), **values)
            )
            if res.rowcount == 0:
                raise ResourceDoesNotExist(f"Logged model with ID '{model_id}' not found.")

    def log_params(self, model_id: str, new: Mapping[str, str]) -> None:
        with self.db.write() as conn:
            self._params(conn, model_id, new)

    def set_tags(self, model_id: str, new: Mapping[str, str]) -> None:
        with self.db.write() as conn:
            for k, v in new.items():
                upsert(conn, logged_model_tags, {"model_id": model_id, "key": k}, v)

    def delete_tag(self, model_id: str, key: str) -> None:
        with self.db.write() as conn:
            res = conn.execute(
                delete(logged_model_tags).where(
                    logged_model_tags.c.model_id == model_id, logged_model_tags.c.key == key
                )
            )
            if res.rowcount == 0:
                raise ResourceDoesNotExist(f"No tag with key '{key}' on logged model '{model_id}'")
