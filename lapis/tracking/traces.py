"""MLflow 3 traces: what ``@mlflow.trace`` and ``mlflow.start_span`` record.

The client sends a finished trace's record (``StartTraceV3``) and then uploads
its spans as ``traces.json`` to the artifact location the record's answer
names — how MLflow's own servers kept spans before they stored them in the
database. So a trace is one row (and its tags) here plus one file in the
artifact store; the tag ``mlflow.trace.spansLocation = ARTIFACT_REPO`` tells
the client to read the spans back from there.

Search takes MLflow's trace filter grammar: ``attributes.status``/``trace.status``
(``state``), ``timestamp_ms``, ``execution_time_ms``, ``name``, ``run_id``,
``client_request_id``, ``tags.<key>`` and ``metadata.<key>``; an experiment
holds few enough traces that they are filtered in Python, one code path for
every kind of key.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from lapis.artifacts.store import ArtifactStore, proxied_path
from lapis.entities.auth import Principal
from lapis.entities.tracking import TraceInfo
from lapis.errors import InvalidParameterValue, ResourceDoesNotExist
from lapis.store.sql.traces import TraceStore
from lapis.tracking import validation as v
from lapis.tracking.search.grammar import Clause, parse_filter, parse_order_by
from lapis.tracking.search.paging import decode_page_token, encode_page_token
from lapis.tracking.service import TrackingService

ARTIFACT_LOCATION = "mlflow.artifactLocation"
SPANS_LOCATION = "mlflow.trace.spansLocation"
SOURCE_RUN = "mlflow.sourceRun"
STATES = ("OK", "ERROR", "IN_PROGRESS", "STATE_UNSPECIFIED")
MAX_RESULTS = 500
SPANS_FILE = "traces.json"
SPANS_MAX_BYTES = 32 * 2**20  # the studio reads a trace's spans whole

TRACE_ENTITIES: dict[str, str] = {
    "attribute": "attributes",
    "attributes": "attributes",
    "trace": "attributes",
    "tag": "tags",
    "tags": "tags",
    "metadata": "metadata",
    "request_metadata": "metadata",
}
_ATTRIBUTES = {
    "status": "state",
    "state": "state",
    "timestamp": "request_time",
    "timestamp_ms": "request_time",
    "request_time": "request_time",
    "execution_time": "execution_duration",
    "execution_time_ms": "execution_duration",
    "execution_duration": "execution_duration",
    "name": "name",
    "run_id": "run_id",
    "client_request_id": "client_request_id",
    "trace_id": "trace_id",
    "request_id": "trace_id",
}


def _value(t: TraceInfo, clause: Clause) -> Any:
    if clause.entity == "tags":
        return t.tags.get(clause.key)
    if clause.entity == "metadata":
        return t.trace_metadata.get(clause.key)
    attr = _ATTRIBUTES.get(clause.key)
    if attr is None:
        raise InvalidParameterValue(
            f"Invalid attribute key '{clause.key}' in trace filter; expected one of "
            f"{', '.join(sorted(_ATTRIBUTES))}"
        )
    return getattr(t, attr)


def _matches(t: TraceInfo, clauses: Iterable[Clause]) -> bool:
    from lapis.tracking.logged_model_filter import compare

    return all(compare(_value(t, c), c.op, c.value) for c in clauses)


class TraceService:
    def __init__(self, tracking: TrackingService, artifacts: ArtifactStore) -> None:
        self.tracking = tracking
        self.artifacts = artifacts
        self.store = TraceStore(tracking.db)

    # --- writing -----------------------------------------------------------------------
    def start(self, info: Mapping[str, Any], principal: Principal | None = None) -> TraceInfo:
        """Record a trace from MLflow's ``TraceInfoV3`` JSON; the answer names where its
        spans go (``mlflow.artifactLocation``)."""
        trace_id = info.get("trace_id")
        if not isinstance(trace_id, str) or not trace_id.strip() or "/" in trace_id:
            raise InvalidParameterValue("trace_info.trace_id must be a trace id such as tr-…")
        location = info.get("trace_location") or {}
        experiment_id = (location.get("mlflow_experiment") or {}).get("experiment_id")
        if experiment_id is None:
            raise InvalidParameterValue(
                "trace_info.trace_location must name an experiment "
                '({"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": …}})'
            )
        exp = self.tracking.get_experiment(experiment_id)
        state = str(info.get("state") or "STATE_UNSPECIFIED")
        if state not in STATES:
            raise InvalidParameterValue(
                f"trace_info.state must be one of {', '.join(STATES)}, got {state!r}"
            )
        tags = {str(k): str(val) for k, val in (info.get("tags") or {}).items()}
        tags[ARTIFACT_LOCATION] = f"{exp.artifact_location.rstrip('/')}/traces/{trace_id}/artifacts"
        tags[SPANS_LOCATION] = "ARTIFACT_REPO"
        metadata = {str(k): str(val) for k, val in (info.get("trace_metadata") or {}).items()}
        if principal is not None and principal.job is not None:
            # a job's code traced outside ``mlflow.start_run()``: the trace is the job run's
            metadata.setdefault(SOURCE_RUN, principal.job.run_id)
        trace = TraceInfo(
            trace_id=trace_id,
            experiment_id=str(exp.experiment_id),
            request_time=_millis(info.get("request_time")) or 0,
            execution_duration=_duration_ms(info.get("execution_duration")),
            state=state,
            request_preview=_text(info.get("request_preview")),
            response_preview=_text(info.get("response_preview")),
            client_request_id=_text(info.get("client_request_id")),
            trace_metadata=metadata,
            tags=tags,
            created_by=principal.name if principal else None,
        )
        self.store.put(trace)
        return trace

    def set_tag(self, trace_id: str, key: object, value: object) -> None:
        k, val = v.validate_tag(key, value)
        self.get(trace_id)
        self.store.set_tag(trace_id, k, val)

    def delete_tag(self, trace_id: str, key: str) -> None:
        self.get(trace_id)
        if not self.store.delete_tag(trace_id, key):
            raise ResourceDoesNotExist(f"No trace tag with key '{key}' on trace '{trace_id}'")

    def delete(
        self,
        experiment_id: object,
        *,
        trace_ids: Sequence[str] = (),
        max_timestamp_millis: int | None = None,
        max_traces: int | None = None,
    ) -> int:
        """MLflow's ``delete_traces``: by id, or the oldest up to a time and a count."""
        if not trace_ids and max_timestamp_millis is None:
            raise InvalidParameterValue(
                "Either `max_timestamp_millis` or `request_ids` must be specified."
            )
        if trace_ids and (max_timestamp_millis is not None or max_traces is not None):
            raise InvalidParameterValue(
                "Only one of `max_timestamp_millis` and `request_ids` can be specified."
            )
        exp = self.tracking.get_experiment(experiment_id)
        gone = self.store.delete(
            int(exp.experiment_id),
            trace_ids=trace_ids,
            max_timestamp_millis=max_timestamp_millis,
            max_traces=max_traces,
        )
        base = proxied_path(exp.artifact_location)
        for trace_id in gone:  # the spans go with the record
            if base is not None:
                with contextlib.suppress(ResourceDoesNotExist):
                    self.artifacts.delete(f"{base}/traces/{trace_id}")
        return len(gone)

    # --- reading -----------------------------------------------------------------------
    def get(self, trace_id: str) -> TraceInfo:
        return self.store.get(trace_id)

    def search(
        self,
        experiment_ids: Sequence[object],
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] = (),
        page_token: str | None = None,
    ) -> tuple[list[TraceInfo], str | None]:
        if not experiment_ids:
            raise InvalidParameterValue("search_traces needs at least one experiment (locations)")
        if not 1 <= max_results <= MAX_RESULTS:
            raise InvalidParameterValue(
                f"max_results must be from 1 to {MAX_RESULTS}, got {max_results}"
            )
        clauses = parse_filter(filter_string, TRACE_ENTITIES)
        for clause in clauses:  # unknown attribute keys fail even when no trace is there
            if clause.entity == "attributes" and clause.key not in _ATTRIBUTES:
                raise InvalidParameterValue(
                    f"Invalid attribute key '{clause.key}' in trace filter; expected one of "
                    f"{', '.join(sorted(_ATTRIBUTES))}"
                )
        ids = self.store.ids_in([v.parse_experiment_id(e) for e in experiment_ids])
        found = [t for t in self.store.get_many(ids) if _matches(t, clauses)]
        orders = [parse_order_by(o) for o in order_by] or [parse_order_by("timestamp_ms DESC")]
        for order in reversed(orders):
            key = order.key if order.entity == "attributes" else None
            attr = _ATTRIBUTES.get(key or "")
            if attr is None:
                raise InvalidParameterValue(
                    f"Invalid order_by key '{order.key}' for traces; use one of "
                    "timestamp_ms, execution_time_ms, status, name, run_id"
                )
            found.sort(key=partial(_sort_key, attr=attr), reverse=not order.ascending)
        offset = decode_page_token(page_token)
        page = found[offset : offset + max_results]
        more = len(found) > offset + max_results
        return page, encode_page_token(offset + max_results) if more else None

    def of_run(self, run_id: str, experiment_id: str) -> list[TraceInfo]:
        """The traces a run produced (its ``mlflow.sourceRun``), newest first."""
        found, _ = self.search(
            [experiment_id], f"attributes.run_id = '{run_id}'", max_results=MAX_RESULTS
        )
        return found

    def spans(self, trace: TraceInfo) -> list[dict[str, Any]]:
        """The trace's spans as the client uploaded them (``traces.json``), or [] if absent."""
        base = proxied_path(trace.tags.get(ARTIFACT_LOCATION, ""))
        if base is None:
            return []
        rel = f"{base}/{SPANS_FILE}"
        if not self.artifacts.is_file(rel):
            return []
        chunks, size = [], 0
        for chunk in self.artifacts.iter_read(rel):  # stop reading at the limit, not after
            size += len(chunk)
            if size > SPANS_MAX_BYTES:
                raise InvalidParameterValue(f"trace {trace.trace_id}'s spans are over 32 MiB")
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            data = json.loads(raw)
        except ValueError:
            return []
        spans = data.get("spans") if isinstance(data, dict) else None
        return [s for s in spans or [] if isinstance(s, dict)]

    def counts(self, experiment_ids: Sequence[int]) -> Mapping[int, int]:
        return self.store.count(experiment_ids)


def _sort_key(t: TraceInfo, attr: str) -> tuple[bool, Any]:
    value = getattr(t, attr)
    return (value is None, value if value is not None else 0)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _millis(value: object) -> int | None:
    """A protobuf Timestamp in its JSON form (RFC 3339 text), or epoch milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return int(value)
    from datetime import datetime

    text = str(value)
    try:
        return int(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameterValue(f"Invalid timestamp {text!r}: expected RFC 3339") from None
    return int(stamp.timestamp() * 1000)


def _duration_ms(value: object) -> int | None:
    """A protobuf Duration in its JSON form (``"1.534s"``), or milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value)
    try:
        return round(float(text[:-1]) * 1000) if text.endswith("s") else int(text)
    except ValueError:
        raise InvalidParameterValue(f"Invalid duration {text!r}: expected e.g. '1.5s'") from None


def timestamp_json(ms: int) -> str:
    """Epoch milliseconds as a protobuf Timestamp's JSON text."""
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def trace_info_json(t: TraceInfo) -> dict[str, Any]:
    """MLflow's ``TraceInfoV3`` in proto JSON."""
    out: dict[str, Any] = {
        "trace_id": t.trace_id,
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": t.experiment_id},
        },
        "request_time": timestamp_json(t.request_time),
        "state": t.state,
        "trace_metadata": dict(t.trace_metadata),
        "tags": dict(t.tags),
    }
    if t.execution_duration is not None:
        out["execution_duration"] = f"{t.execution_duration / 1000:.3f}s"
    for key in ("request_preview", "response_preview", "client_request_id"):
        value = getattr(t, key)
        if value is not None:
            out[key] = value
    return out
