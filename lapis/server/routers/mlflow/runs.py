"""MLflow run endpoints: lifecycle, logging, search and metric history."""

from __future__ import annotations

from typing import Any

from lapis.entities.tracking import DatasetInput, Point
from lapis.errors import InvalidParameterValue
from lapis.server.routers.mlflow._handler import Args, Ctx, Route, runs_now
from lapis.server.routers.mlflow.experiments import view_type
from lapis.tracking.mlflow_compat import (
    float_in,
    metric_json,
    metrics_json,
    run_info_json,
    run_json,
)


def _run_id(a: Args) -> str:
    run_id = a.str("run_id") or a.str("run_uuid")
    if not run_id:
        raise InvalidParameterValue(
            "Missing value for required parameter 'run_id'. See the API docs for more "
            "information about request parameters."
        )
    return run_id


def _point(m: Any, i: int) -> Point:
    where = f"metrics[{i}]" if i >= 0 else "metric"
    if not isinstance(m, dict):
        raise InvalidParameterValue(
            f"Invalid value {m!r} for parameter '{where}': expected an object"
        )
    sub = Args(m)
    key = m.get("key")
    if not isinstance(key, str) or not key:
        raise InvalidParameterValue(
            f"Missing value for required parameter '{where}.key'"
            if key in (None, "")
            else f"Invalid value {key!r} for parameter '{where}.key' supplied: expected a string"
        )
    if "value" not in m:
        raise InvalidParameterValue(f"Missing value for required parameter '{where}.value'")
    ts = sub.int("timestamp", required=True)
    assert ts is not None
    return Point(
        key=key,
        value=float_in(m["value"], f"{where}.value"),
        timestamp=ts,
        step=sub.int("step", default=0) or 0,
        model_id=sub.str("model_id"),
        dataset_name=sub.str("dataset_name"),
        dataset_digest=sub.str("dataset_digest"),
    )


def create(a: Args, c: Ctx) -> dict[str, Any]:
    run = c.ws.tracking.create_run(
        experiment_id=a.str("experiment_id"),
        user_id=a.str("user_id"),
        run_name=a.str("run_name"),
        start_time=a.int("start_time"),
        tags=dict(a.kv_list("tags")),
        principal=c.principal,
    )
    return {"run": run_json(run)}


def update(a: Args, c: Ctx) -> dict[str, Any]:
    info = c.ws.tracking.update_run(
        _run_id(a), status=a.str("status"), end_time=a.int("end_time"), run_name=a.str("run_name")
    )
    return {"run_info": run_info_json(info)}


def get(a: Args, c: Ctx) -> dict[str, Any]:
    return {"run": run_json(c.ws.tracking.get_run(_run_id(a)))}


def delete(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.tracking.delete_run(_run_id(a))
    return {}


def restore(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.tracking.restore_run(_run_id(a))
    return {}


def search(a: Args, c: Ctx) -> dict[str, Any]:
    runs, token = c.ws.tracking.search_runs(
        experiment_ids=a.str_list("experiment_ids"),
        filter_string=a.str("filter") or "",
        view_type=view_type(a, "run_view_type"),
        max_results=a.int_or("max_results", 1000),
        order_by=a.str_list("order_by"),
        page_token=a.str("page_token"),
    )
    out: dict[str, Any] = {"runs": [run_json(r) for r in runs]}
    if token:
        out["next_page_token"] = token
    return out


def log_metric(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.tracking.log_batch(_run_id(a), metrics=[_point(a.data, -1)])
    return {}


@runs_now(log_metric)
def log_metric_now(a: Args, c: Ctx) -> dict[str, Any] | None:
    """The same call on the event loop when SQLite's write lock is free (no thread hop)."""
    return {} if c.ws.tracking.log_metrics_now(_run_id(a), [_point(a.data, -1)]) else None


def log_param(a: Args, c: Ctx) -> dict[str, Any]:
    # a string, as MLflow's schema has it (its clients always send one); absent: ""
    c.ws.tracking.log_batch(_run_id(a), params=[(a.req_str("key"), a.str("value", default=""))])
    return {}


def set_tag(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.tracking.log_batch(_run_id(a), tags=[(a.req_str("key"), a.str("value", default=""))])
    return {}


def delete_tag(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.tracking.delete_tag(_run_id(a), a.req_str("key"))
    return {}


def log_batch(a: Args, c: Ctx) -> dict[str, Any]:
    metrics = [_point(m, i) for i, m in enumerate(a.list("metrics"))]
    c.ws.tracking.log_batch(
        _run_id(a), metrics=metrics, params=a.kv_list("params"), tags=a.kv_list("tags")
    )
    return {}


def log_inputs(a: Args, c: Ctx) -> dict[str, Any]:
    datasets = []
    for i, item in enumerate(a.list("datasets")):
        ds = item.get("dataset") if isinstance(item, dict) else None
        if not isinstance(ds, dict):
            raise InvalidParameterValue(
                f"Missing value for required parameter 'datasets[{i}].dataset'"
            )
        for field in ("name", "digest", "source_type", "source"):
            if not isinstance(ds.get(field), str):
                raise InvalidParameterValue(
                    f"Missing value for required parameter 'datasets[{i}].dataset.{field}'"
                )
        datasets.append(
            DatasetInput(
                name=ds["name"],
                digest=ds["digest"],
                source_type=ds["source_type"],
                source=ds["source"],
                schema=ds.get("schema"),
                profile=ds.get("profile"),
                tags=[t for t in item.get("tags") or [] if isinstance(t, dict)],
            )
        )
    models = [m.get("model_id") for m in a.list("models") if isinstance(m, dict)]
    c.ws.tracking.log_inputs(_run_id(a), datasets, [m for m in models if isinstance(m, str)])
    return {}


def log_outputs(a: Args, c: Ctx) -> dict[str, Any]:
    models = []
    for i, m in enumerate(a.list("models")):
        if not isinstance(m, dict) or not isinstance(m.get("model_id"), str):
            continue
        step = Args(m).int(f"models[{i}].step") if m.get("step") is not None else 0
        models.append((m["model_id"], step or 0))
    c.ws.tracking.log_outputs(_run_id(a), models)
    return {}


def log_model(a: Args, c: Ctx) -> dict[str, Any]:
    """MLflow 2's model-history tag; kept so older clients' log_model works."""
    import json

    model_json = a.req_str("model_json")
    try:
        json.loads(model_json)
    except ValueError:
        raise InvalidParameterValue("Malformed model info: 'model_json' is not JSON") from None
    run_id = _run_id(a)
    run = c.ws.tracking.get_run(run_id)
    history = json.loads(run.tags.get("mlflow.log-model.history", "[]"))
    history.append(json.loads(model_json))
    c.ws.tracking.log_batch(run_id, tags=[("mlflow.log-model.history", json.dumps(history))])
    return {}


def metric_history(a: Args, c: Ctx) -> dict[str, Any]:
    points, token = c.ws.tracking.metric_history(
        _run_id(a), a.req_str("metric_key"), a.int("max_results"), a.str("page_token")
    )
    out: dict[str, Any] = {"metrics": metrics_json(points)}
    if token:
        out["next_page_token"] = token
    return out


def history_bulk_interval(a: Args, c: Ctx) -> dict[str, Any]:
    run_ids = a.str_list("run_ids")
    if not run_ids:
        raise InvalidParameterValue("GetMetricHistoryBulkInterval request must specify a run_id.")
    if len(run_ids) > 100:
        raise InvalidParameterValue(
            f"GetMetricHistoryBulkInterval request cannot specify more than 100 run_ids. "
            f"Received {len(run_ids)} run_ids."
        )
    max_results = a.int_or("max_results", 320)
    if not 1 <= max_results <= 2500:
        raise InvalidParameterValue("max_results must be between 1 and 2500.")
    points = c.ws.tracking.metric_history_sampled(
        run_ids, a.req_str("metric_key"), max_results, a.int("start_step"), a.int("end_step")
    )
    return {"metrics": [metric_json(m, with_run=True) for m in points]}


MAX_BULK_RUNS = 100
MAX_BULK_POINTS = 25_000


def history_bulk(a: Args, c: Ctx) -> dict[str, Any]:
    """The UI's older bulk call: full histories of one key for several runs."""
    run_ids = a.str_list("run_id")
    if not run_ids:
        raise InvalidParameterValue(
            "GetMetricHistoryBulk request must specify at least one run_id."
        )
    if len(run_ids) > MAX_BULK_RUNS:
        raise InvalidParameterValue(
            f"GetMetricHistoryBulk request cannot specify more than {MAX_BULK_RUNS} run_ids. "
            f"Received {len(run_ids)} run_ids."
        )
    key = a.req_str("metric_key")
    limit = min(a.int("max_results", default=MAX_BULK_POINTS) or MAX_BULK_POINTS, MAX_BULK_POINTS)
    out: list[dict[str, Any]] = []
    for run_id in sorted(run_ids):  # by run id, each by (timestamp, step, value), as MLflow
        points, _ = c.ws.tracking.metric_history(run_id, key, limit)
        points = sorted(points, key=lambda m: (m.timestamp, m.step, m.value))
        out.extend(metric_json(m, with_run=True) | {"run_id": run_id} for m in points)
    return {"metrics": out}


def list_artifacts(a: Args, c: Ctx) -> dict[str, Any]:
    """The older run-scoped listing the MLflow UI uses; paths are relative to the run root."""
    from lapis.artifacts.store import clean_relpath, proxied_path

    info = c.ws.tracking.runs.get_info(_run_id(a))
    base = proxied_path(info.artifact_uri)
    if base is None:
        raise InvalidParameterValue(
            f"Run artifacts live at {info.artifact_uri}, outside the server's artifact proxy"
        )
    rel = clean_relpath(a.str("path") or "")
    files = c.ws.artifacts.list(f"{base}/{rel}" if rel else base)
    cut = len(base) + 1
    out: dict[str, Any] = {"root_uri": info.artifact_uri, "files": []}
    for f in files:
        entry: dict[str, Any] = {"path": f.path[cut:], "is_dir": f.is_dir}
        if f.file_size is not None:
            entry["file_size"] = f.file_size
        out["files"].append(entry)
    return out


ROUTES: list[Route] = [
    ("POST", "/runs/create", create),
    ("POST", "/runs/update", update),
    ("GET", "/runs/get", get),
    ("POST", "/runs/delete", delete),
    ("POST", "/runs/restore", restore),
    ("POST", "/runs/search", search),
    ("POST", "/runs/log-metric", log_metric),
    ("POST", "/runs/log-parameter", log_param),
    ("POST", "/runs/set-tag", set_tag),
    ("POST", "/runs/delete-tag", delete_tag),
    ("POST", "/runs/log-batch", log_batch),
    ("POST", "/runs/log-inputs", log_inputs),
    ("POST", "/runs/outputs", log_outputs),
    ("POST", "/runs/log-model", log_model),
    ("GET", "/metrics/get-history", metric_history),
    ("GET", "/metrics/get-history-bulk-interval", history_bulk_interval),
    ("GET", "/metrics/get-history-bulk", history_bulk),
    ("GET", "/artifacts/list", list_artifacts),
]
