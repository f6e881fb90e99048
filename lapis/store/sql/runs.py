"""Runs with their params, tags, dataset inputs and model links.

Metric points live in ``metrics.py``: they are the hot path and are written
with driver-level bulk statements, while everything here is ordinary Core.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, delete, insert, select, update

from lapis.entities.tracking import DatasetInput, Metric, Run, RunInfo
from lapis.errors import InvalidParameterValue, ResourceDoesNotExist
from lapis.store.sql.engine import Database
from lapis.store.sql.experiments import upsert
from lapis.store.sql.tables import (
    datasets,
    latest_metrics,
    params,
    run_inputs,
    run_model_io,
    runs,
    tags,
)


def _info(r: object) -> RunInfo:
    return RunInfo(
        run_id=r.run_uuid,  # type: ignore[attr-defined]
        run_name=r.name,  # type: ignore[attr-defined]
        experiment_id=str(r.experiment_id),  # type: ignore[attr-defined]
        user_id=r.user_id,  # type: ignore[attr-defined]
        created_by=r.created_by,  # type: ignore[attr-defined]
        status=r.status,  # type: ignore[attr-defined]
        start_time=r.start_time,  # type: ignore[attr-defined]
        end_time=r.end_time,  # type: ignore[attr-defined]
        artifact_uri=r.artifact_uri,  # type: ignore[attr-defined]
        lifecycle_stage=r.lifecycle_stage,  # type: ignore[attr-defined]
    )


class RunStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- reads ---------------------------------------------------------------
    def get_info(self, run_id: str, conn: Connection | None = None) -> RunInfo:
        if conn is None:
            with self.db.read() as c:
                return self.get_info(run_id, c)
        row = conn.execute(select(runs).where(runs.c.run_uuid == run_id)).first()
        if row is None:
            raise ResourceDoesNotExist(f"Run with id={run_id} not found")
        return _info(row)

    def lifecycle_stage(self, conn: Connection, run_id: str) -> str | None:
        """One indexed lookup in the caller's transaction, in driver SQL: it runs on every
        logging call, where SQLAlchemy's statement layer would double its cost."""
        p = "?" if self.db.is_sqlite else "%s"
        stage = conn.exec_driver_sql(
            f"SELECT lifecycle_stage FROM runs WHERE run_uuid = {p}", (run_id,)
        ).scalar()
        return None if stage is None else str(stage)

    def get(self, run_id: str) -> Run:
        found = self.get_many([run_id])
        if not found:
            raise ResourceDoesNotExist(f"Run with id={run_id} not found")
        return found[0]

    def get_many(self, run_ids: Sequence[str], conn: Connection | None = None) -> list[Run]:
        """Whole runs in the order asked, fetched with one query per child table."""
        if not run_ids:
            return []
        if conn is None:
            with self.db.read() as c:
                return self.get_many(run_ids, c)
        ids = list(run_ids)
        by_id = {
            r.run_uuid: Run(info=_info(r))
            for r in conn.execute(select(runs).where(runs.c.run_uuid.in_(ids)))
        }
        for run_uuid, key, value in conn.execute(
            select(params.c.run_uuid, params.c.key, params.c.value).where(
                params.c.run_uuid.in_(ids)
            )
        ):
            by_id[run_uuid].params[key] = value
        for run_uuid, key, value in conn.execute(
            select(tags.c.run_uuid, tags.c.key, tags.c.value).where(tags.c.run_uuid.in_(ids))
        ):
            by_id[run_uuid].tags[key] = value
        lm = latest_metrics.c
        nan = float("nan")
        for run_uuid, key, value, ts, step, is_nan in conn.execute(
            select(lm.run_uuid, lm.key, lm.value, lm.timestamp, lm.step, lm.is_nan).where(
                lm.run_uuid.in_(ids)
            )
        ):
            by_id[run_uuid].metrics.append(Metric(key, nan if is_nan else value, ts, step))
        for row in conn.execute(
            select(run_inputs.c.run_uuid, run_inputs.c.tags_json, datasets)
            .join(datasets, datasets.c.dataset_uuid == run_inputs.c.dataset_uuid)
            .where(run_inputs.c.run_uuid.in_(ids))
        ):
            by_id[row.run_uuid].datasets.append(
                DatasetInput(
                    name=row.name,
                    digest=row.digest,
                    source_type=row.source_type,
                    source=row.source,
                    schema=row.schema,
                    profile=row.profile,
                    tags=json.loads(row.tags_json),
                )
            )
        for run_uuid, model_id, direction, step in conn.execute(
            select(
                run_model_io.c.run_uuid,
                run_model_io.c.model_id,
                run_model_io.c.direction,
                run_model_io.c.step,
            ).where(run_model_io.c.run_uuid.in_(ids))
        ):
            if direction == "input":
                by_id[run_uuid].model_inputs.append(model_id)
            else:
                by_id[run_uuid].model_outputs.append((model_id, step))
        return [by_id[i] for i in ids if i in by_id]

    # --- writes --------------------------------------------------------------
    def create(self, info: RunInfo, experiment_id: int, run_tags: Mapping[str, str]) -> None:
        with self.db.write() as conn:
            conn.execute(
                insert(runs).values(
                    run_uuid=info.run_id,
                    name=info.run_name,
                    experiment_id=experiment_id,
                    user_id=info.user_id,
                    created_by=info.created_by,
                    status=info.status,
                    start_time=info.start_time,
                    end_time=info.end_time,
                    lifecycle_stage=info.lifecycle_stage,
                    artifact_uri=info.artifact_uri,
                )
            )
            if run_tags:
                conn.execute(
                    insert(tags),
                    [{"run_uuid": info.run_id, "key": k, "value": v} for k, v in run_tags.items()],
                )

    def update(self, run_id: str, **values: object) -> None:
        with self.db.write() as conn:
            res = conn.execute(update(runs).where(runs.c.run_uuid == run_id).values(**values))
            if res.rowcount == 0:
                raise ResourceDoesNotExist(f"Run with id={run_id} not found")
            if "name" in values and values["name"] is not None:
                upsert(
                    conn, tags, {"run_uuid": run_id, "key": "mlflow.runName"}, str(values["name"])
                )

    def log_params(self, conn: Connection, run_id: str, new: Mapping[str, str]) -> None:
        """Insert params; re-logging the same value is a no-op, a different value is refused."""
        if not new:
            return
        existing = dict(
            conn.execute(
                select(params.c.key, params.c.value).where(
                    params.c.run_uuid == run_id, params.c.key.in_(list(new))
                )
            ).all()
        )
        changed = [
            {"key": k, "old_value": existing[k], "new_value": v}
            for k, v in new.items()
            if k in existing and existing[k] != v
        ]
        if changed:
            first = changed[0]
            raise InvalidParameterValue(
                f"Changing param values is not allowed. Param with key='{first['key']}' was "
                f"already logged with value='{first['old_value']}' for run ID='{run_id}'. "
                f"Attempted logging new value '{first['new_value']}'.",
                changed=changed,
            )
        fresh = [
            {"run_uuid": run_id, "key": k, "value": v} for k, v in new.items() if k not in existing
        ]
        if fresh:
            conn.execute(insert(params), fresh)

    def set_tags(self, conn: Connection, run_id: str, new: Mapping[str, str]) -> None:
        for key, value in new.items():
            upsert(conn, tags, {"run_uuid": run_id, "key": key}, value)
            if key == "mlflow.runName":
                conn.execute(update(runs).where(runs.c.run_uuid == run_id).values(name=value))

    def delete_tag(self, run_id: str, key: str) -> None:
        with self.db.write() as conn:
            res = conn.execute(delete(tags).where(tags.c.run_uuid == run_id, tags.c.key == key))
            if res.rowcount == 0:
                raise ResourceDoesNotExist(f"No tag with name: {key} in run with id {run_id}")

    def log_inputs(
        self, conn: Connection, run_id: str, experiment_id: int, inputs: Sequence[DatasetInput]
    ) -> None:
        import uuid

        for ds in inputs:
            ds_id = conn.execute(
                select(datasets.c.dataset_uuid).where(
                    datasets.c.experiment_id == experiment_id,
                    datasets.c.name == ds.name,
                    datasets.c.digest == ds.digest,
                )
            ).scalar_one_or_none()
            if ds_id is None:
                ds_id = uuid.uuid4().hex
                conn.execute(
                    insert(datasets).values(
                        dataset_uuid=ds_id,
                        experiment_id=experiment_id,
                        name=ds.name,
                        digest=ds.digest,
                        source_type=ds.source_type,
                        source=ds.source,
                        schema=ds.schema,
                        profile=ds.profile,
                    )
                )
            already = conn.execute(
                select(run_inputs.c.run_uuid).where(
                    run_inputs.c.run_uuid == run_id, run_inputs.c.dataset_uuid == ds_id
                )
            ).first()
            if already is None:
                conn.execute(
                    insert(run_inputs).values(
                        run_uuid=run_id, dataset_uuid=ds_id, tags_json=json.dumps(ds.tags)
                    )
                )

    def link_models(
        self, conn: Connection, run_id: str, direction: str, models: Sequence[tuple[str, int]]
    ) -> None:
        for model_id, step in models:
            exists = conn.execute(
                select(run_model_io.c.model_id).where(
                    run_model_io.c.run_uuid == run_id,
                    run_model_io.c.model_id == model_id,
                    run_model_io.c.direction == direction,
                )
            ).first()
            if exists is None:
                conn.execute(
                    insert(run_model_io).values(
                        run_uuid=run_id, model_id=model_id, direction=direction, step=step
                    )
                )
