"""MLflow 3 traces: their records and tags (spans live in the artifact store)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence

from sqlalchemy import and_, delete, func, insert, select

from lapis.entities.tracking import TraceInfo
from lapis.errors import ResourceDoesNotExist
from lapis.store.sql.engine import Database
from lapis.store.sql.experiments import upsert
from lapis.store.sql.tables import trace_tags, traces


class TraceStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, t: TraceInfo) -> None:
        """Record a trace, or replace its record (the client may send a trace twice)."""
        with self.db.write() as conn:
            conn.execute(delete(trace_tags).where(trace_tags.c.trace_id == t.trace_id))
            conn.execute(delete(traces).where(traces.c.trace_id == t.trace_id))
            conn.execute(
                insert(traces).values(
                    trace_id=t.trace_id,
                    experiment_id=int(t.experiment_id),
                    request_time=t.request_time,
                    execution_duration=t.execution_duration,
                    state=t.state,
                    request_preview=t.request_preview,
                    response_preview=t.response_preview,
                    client_request_id=t.client_request_id,
                    trace_metadata=json.dumps(t.trace_metadata),
                    created_by=t.created_by,
                )
            )
            if t.tags:
                conn.execute(
                    insert(trace_tags),
                    [{"trace_id": t.trace_id, "key": k, "value": v} for k, v in t.tags.items()],
                )

    def get(self, trace_id: str) -> TraceInfo:
        found = self.get_many([trace_id])
        if not found:
            raise ResourceDoesNotExist(f"Trace with ID '{trace_id}' not found.")
        return found[0]

    def get_many(self, ids: Sequence[str]) -> list[TraceInfo]:
        if not ids:
            return []
        with self.db.read() as conn:
            rows = conn.execute(select(traces).where(traces.c.trace_id.in_(list(ids)))).all()
            tags: dict[str, dict[str, str]] = defaultdict(dict)
            for tid, k, v in conn.execute(
                select(trace_tags.c.trace_id, trace_tags.c.key, trace_tags.c.value).where(
                    trace_tags.c.trace_id.in_(list(ids))
                )
            ):
                tags[tid][k] = v
        order = {tid: i for i, tid in enumerate(ids)}
        return sorted(
            (
                TraceInfo(
                    trace_id=r.trace_id,
                    experiment_id=str(r.experiment_id),
                    request_time=r.request_time,
                    execution_duration=r.execution_duration,
                    state=r.state,
                    request_preview=r.request_preview,
                    response_preview=r.response_preview,
                    client_request_id=r.client_request_id,
                    trace_metadata=json.loads(r.trace_metadata or "{}"),
                    tags=tags.get(r.trace_id, {}),
                    created_by=r.created_by,
                )
                for r in rows
            ),
            key=lambda t: order[t.trace_id],
        )

    def ids_in(self, experiment_ids: Sequence[int]) -> list[str]:
        """Every trace of these experiments, newest first."""
        with self.db.read() as conn:
            return list(
                conn.execute(
                    select(traces.c.trace_id)
                    .where(traces.c.experiment_id.in_(list(experiment_ids)))
                    .order_by(traces.c.request_time.desc(), traces.c.trace_id)
                ).scalars()
            )

    def experiment_of(self, trace_id: str) -> str | None:
        with self.db.read() as conn:
            found = conn.execute(
                select(traces.c.experiment_id).where(traces.c.trace_id == trace_id)
            ).scalar()
        return None if found is None else str(found)

    def set_tag(self, trace_id: str, key: str, value: str) -> None:
        with self.db.write() as conn:
            upsert(conn, trace_tags, {"trace_id": trace_id, "key": key}, value)

    def delete_tag(self, trace_id: str, key: str) -> bool:
        with self.db.write() as conn:
            res = conn.execute(
                delete(trace_tags).where(
                    and_(trace_tags.c.trace_id == trace_id, trace_tags.c.key == key)
                )
            )
        return bool(res.rowcount)

    def delete(
        self,
        experiment_id: int,
        *,
        trace_ids: Sequence[str] = (),
        max_timestamp_millis: int | None = None,
        max_traces: int | None = None,
    ) -> list[str]:
        """Delete the named traces, or the oldest ones up to a time and a count; the ids."""
        with self.db.write() as conn:
            q = select(traces.c.trace_id).where(traces.c.experiment_id == experiment_id)
            if trace_ids:
                q = q.where(traces.c.trace_id.in_(list(trace_ids)))
            if max_timestamp_millis is not None:
                q = q.where(traces.c.request_time <= max_timestamp_millis)
            q = q.order_by(traces.c.request_time, traces.c.trace_id)
            if max_traces is not None:
                q = q.limit(max_traces)
            gone = list(conn.execute(q).scalars())
            if gone:
                conn.execute(delete(trace_tags).where(trace_tags.c.trace_id.in_(gone)))
                conn.execute(delete(traces).where(traces.c.trace_id.in_(gone)))
        return gone

    def count(self, experiment_ids: Sequence[int]) -> Mapping[int, int]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(traces.c.experiment_id, func.count())
                .where(traces.c.experiment_id.in_(list(experiment_ids)))
                .group_by(traces.c.experiment_id)
            ).all()
        return {int(e): int(n) for e, n in rows}
