"""The tracking service: experiments, runs, params, tags, metrics and inputs.

It owns the rules (names, limits, which runs accept writes, artifact URIs)
and talks to the stores; the MLflow routes, the native API and the SDK are
all thin faces over it. ``log_batch`` is the one write path for metrics,
params and tags: single-item calls go through it too.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from lapis.entities.auth import JOB_TAG, Principal
from lapis.entities.tracking import (
    DatasetInput,
    Experiment,
    LifecycleStage,
    Metric,
    Point,
    Run,
    RunInfo,
    RunStatus,
    ViewType,
)
from lapis.errors import InvalidParameterValue, PermissionDenied, ResourceDoesNotExist
from lapis.store.sql.engine import Database
from lapis.store.sql.experiments import ExperimentStore
from lapis.store.sql.metrics import MetricStore
from lapis.store.sql.runs import RunStore
from lapis.tracking import validation as v
from lapis.util import new_run_id, now_ms, random_name

if TYPE_CHECKING:
    from lapis.tracking.run_table import RunsPage, RunsQuery

DEFAULT_EXPERIMENT_ID = 0
DEFAULT_EXPERIMENT_NAME = "Default"
ARTIFACT_SCHEME = "mlflow-artifacts:"
MAX_HISTORY_PAGE = 100_000


def absolute_location(location: str) -> str:
    """A relative local artifact location made absolute against the server's folder, as
    MLflow's server does (``file:relative`` keeps its scheme); URIs stay as given."""
    parts = urllib.parse.urlsplit(location)
    if parts.scheme not in ("", "file"):
        return location
    path = parts.path if parts.scheme == "file" else location
    if parts.netloc or Path(path).is_absolute():
        return location
    absolute = (Path.cwd() / path).as_posix()
    return f"file://{absolute}" if parts.scheme == "file" else absolute


class TrackingService:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.experiments = ExperimentStore(db)
        self.runs = RunStore(db)
        self.metrics = MetricStore(db)

    # --- experiments --------------------------------------------------------
    def ensure_default_experiment(self) -> None:
        try:
            self.experiments.get(DEFAULT_EXPERIMENT_ID)
        except ResourceDoesNotExist:
            self.experiments.create(
                DEFAULT_EXPERIMENT_NAME, None, {}, None, ARTIFACT_SCHEME, DEFAULT_EXPERIMENT_ID
            )

    def create_experiment(
        self,
        name: object,
        artifact_location: str | None = None,
        tags: Mapping[str, str] | None = None,
        principal: Principal | None = None,
    ) -> str:
        name = v.validate_experiment_name(name)
        clean = dict(v.validate_tag(k, val) for k, val in (tags or {}).items())
        if artifact_location and ".." in artifact_location.split("/"):
            raise InvalidParameterValue(f"Invalid artifact_location '{artifact_location}'")
        return self.experiments.create(
            name,
            absolute_location(artifact_location) if artifact_location else None,
            clean,
            principal.name if principal else None,
            ARTIFACT_SCHEME,
        )

    def get_experiment(self, experiment_id: object) -> Experiment:
        return self.experiments.get(v.parse_experiment_id(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment:
        exp = self.experiments.get_by_name(name)
        if exp is None:
            raise ResourceDoesNotExist(f"Could not find experiment with name '{name}'")
        return exp

    def get_or_create_experiment(self, name: str, principal: Principal | None) -> Experiment:
        exp = self.experiments.get_by_name(name)
        if exp is None:
            return self.get_experiment(self.create_experiment(name, principal=principal))
        return exp

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str = "",
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Experiment], str | None]:
        from lapis.tracking.search.experiments import experiment_search_select
        from lapis.tracking.search.paging import decode_page_token, encode_page_token

        _check_max_results(max_results, 50_000)
        offset = decode_page_token(page_token)
        stmt = experiment_search_select(
            filter_string or "",
            list(order_by or []),
            view_type.value,
            max_results + 1,
            offset,
            dialect=self.db.dialect,
        )
        with self.db.read() as conn:
            ids = list(conn.execute(stmt).scalars())
            token = encode_page_token(offset + max_results) if len(ids) > max_results else None
            return self.experiments.get_many(ids[:max_results], conn), token

    def rename_experiment(self, experiment_id: object, new_name: object) -> None:
        exp = self.get_experiment(experiment_id)
        if exp.lifecycle_stage != LifecycleStage.ACTIVE.value:
            raise InvalidParameterValue(
                f"Cannot rename a non-active experiment {experiment_id}. Restore it first."
            )
        self.experiments.rename(int(exp.experiment_id), v.validate_experiment_name(new_name))

    def delete_experiment(self, experiment_id: object) -> None:
        exp_id = v.parse_experiment_id(experiment_id)
        if exp_id == DEFAULT_EXPERIMENT_ID:
            raise InvalidParameterValue("The default experiment cannot be deleted.")
        self.experiments.set_stage(exp_id, LifecycleStage.DELETED.value)

    def restore_experiment(self, experiment_id: object) -> None:
        self.experiments.set_stage(
            v.parse_experiment_id(experiment_id), LifecycleStage.ACTIVE.value
        )

    def set_experiment_tag(self, experiment_id: object, key: object, value: object) -> None:
        exp = self.get_experiment(experiment_id)
        _require_active_experiment(exp)
        k, val = v.validate_tag(key, value)
        self.experiments.set_tag(int(exp.experiment_id), k, val)

    def delete_experiment_tag(self, experiment_id: object, key: str) -> None:
        exp = self.get_experiment(experiment_id)
        _require_active_experiment(exp)
        self.experiments.delete_tag(int(exp.experiment_id), key)

    # --- runs ----------------------------------------------------------------
    def create_run(
        self,
        experiment_id: object,
        user_id: str | None = None,
        run_name: str | None = None,
        start_time: int | None = None,
        tags: Mapping[str, str] | None = None,
        principal: Principal | None = None,
    ) -> Run:
        exp = self.get_experiment(
            DEFAULT_EXPERIMENT_ID if experiment_id in (None, "") else experiment_id
        )
        _require_active_experiment(exp)
        clean = dict(v.validate_tag(k, val) for k, val in (tags or {}).items())
        if principal is not None and principal.job is not None:
            if exp.experiment_id != principal.job.experiment_id:
                raise PermissionDenied(
                    f"The token of job {principal.job.job} can start runs only in its own "
                    f"experiment {principal.job.experiment_id}, not {exp.experiment_id}"
                )
            clean[JOB_TAG] = principal.job.job
        name = run_name or clean.get("mlflow.runName") or random_name()
        if clean.get("mlflow.runName", name) != name:
            raise InvalidParameterValue(
                f"Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
                f"different values (run_name='{name}', mlflow.runName="
                f"'{clean['mlflow.runName']}')."
            )
        clean["mlflow.runName"] = v.no_nul("The run name", name)
        if user_id is None and principal is not None:
            user_id = principal.name
        if user_id is not None:
            clean.setdefault("mlflow.user", user_id)
        run_id = new_run_id()
        info = RunInfo(
            run_id=run_id,
            run_name=name,
            experiment_id=exp.experiment_id,
            user_id=user_id,
            created_by=principal.name if principal else None,
            status=RunStatus.RUNNING.value,
            start_time=start_time if start_time is not None else now_ms(),
            end_time=None,
            artifact_uri=f"{exp.artifact_location.rstrip('/')}/{run_id}/artifacts",
            lifecycle_stage=LifecycleStage.ACTIVE.value,
        )
        self.runs.create(info, int(exp.experiment_id), clean)
        return Run(info=info, tags=clean)

    def get_run(self, run_id: str) -> Run:
        return self.runs.get(run_id)

    def update_run(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        info = self.runs.get_info(run_id)
        _require_active_run(info)
        values: dict[str, object] = {}
        if status is not None:
            try:
                values["status"] = RunStatus(status).value
            except ValueError:
                raise InvalidParameterValue(
                    f"Invalid run status '{status}'; expected one of "
                    f"{', '.join(s.value for s in RunStatus)}"
                ) from None
        if end_time is not None:
            values["end_time"] = end_time
        elif status is not None and RunStatus(status).is_terminal and info.end_time is None:
            values["end_time"] = now_ms()
        if run_name:
            values["name"] = v.no_nul("The run name", run_name)
        if values:
            self.runs.update(run_id, **values)
        return self.runs.get_info(run_id)

    def delete_run(self, run_id: str) -> None:
        self.runs.get_info(run_id)
        self.runs.update(
            run_id, lifecycle_stage=LifecycleStage.DELETED.value, deleted_time=now_ms()
        )

    def restore_run(self, run_id: str) -> None:
        self.runs.get_info(run_id)
        self.runs.update(run_id, lifecycle_stage=LifecycleStage.ACTIVE.value, deleted_time=None)

    def search_runs(
        self,
        experiment_ids: Sequence[object],
        filter_string: str = "",
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Run], str | None]:
        from lapis.tracking.search.paging import decode_page_token, encode_page_token
        from lapis.tracking.search.runs import run_search_select

        _check_max_results(max_results, 50_000)
        offset = decode_page_token(page_token)
        exp_ids = [v.parse_experiment_id(e) for e in experiment_ids]
        stmt = run_search_select(
            exp_ids,
            filter_string or "",
            list(order_by or []),
            view_type.value,
            max_results + 1,
            offset,
            dialect=self.db.dialect,
        )
        with self.db.read() as conn:
            run_ids: list[str] = list(conn.execute(stmt).scalars())
            token = encode_page_token(offset + max_results) if len(run_ids) > max_results else None
            return self.runs.get_many(run_ids[:max_results], conn), token

    # --- logging -----------------------------------------------------------
    def _writable_run(self, run_id: str) -> RunInfo:
        info = self.runs.get_info(run_id)
        _require_active_run(info)
        return info

    def _check_writable(self, conn: Connection, run_id: str) -> None:
        """The run exists and is active, checked inside the write transaction itself
        (one indexed lookup on the connection already held: the hot path's only read)."""
        self._require_stage(run_id, self.runs.lifecycle_stage(conn, run_id))

    @staticmethod
    def _require_stage(run_id: str, stage: str | None) -> None:
        if stage is None:
            raise ResourceDoesNotExist(f"Run with id={run_id} not found")
        if stage != LifecycleStage.ACTIVE.value:
            raise _not_active(run_id, stage)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Point] = (),
        params: Sequence[tuple[object, object]] = (),
        tags: Sequence[tuple[object, object]] = (),
    ) -> None:
        """Validate everything first, then write it in one transaction, or nothing."""
        for p in metrics:
            v.validate_key("metric", p.key)
        clean_params: dict[str, str] = {}
        for key, value in params:
            k, val = v.validate_param(key, value)
            if clean_params.get(k, val) != val:
                raise InvalidParameterValue(
                    f"Duplicate parameter keys have been submitted: '{k}' with different values"
                )
            clean_params[k] = val
        clean_tags = dict(v.validate_tag(k, val) for k, val in tags)
        if self._plain_points(metrics) and not clean_params and not clean_tags:
            with self.db.write_raw() as dbapi:  # mlflow's log_metric: driver SQL only
                self._write_points_raw(dbapi, run_id, metrics)
            return
        with self.db.write() as conn:
            self._check_writable(conn, run_id)
            self.runs.log_params(conn, run_id, clean_params)
            if clean_tags:
                self.runs.set_tags(conn, run_id, clean_tags)
            self.metrics.insert(conn, run_id, metrics)

    def log_metrics_now(self, run_id: str, metrics: Sequence[Point]) -> bool:
        """Write plain points on the calling thread if SQLite's write lock is free now.

        The server tries this on its event loop for single calls before handing the
        work to a thread (lapis/store/sql/engine.py ``write_now``). False: nothing was
        written, use ``log_batch``. Validation errors raise as they would there.
        """
        if not self._plain_points(metrics):
            return False  # log_batch validates and writes them
        for p in metrics:
            v.validate_key("metric", p.key)
        done, _ = self.db.write_now(lambda dbapi: self._write_points_raw(dbapi, run_id, metrics))
        return done

    def _plain_points(self, metrics: Sequence[Point]) -> bool:
        return self.db.is_sqlite and bool(metrics) and not any(p.model_id for p in metrics)

    def _write_points_raw(self, dbapi: Any, run_id: str, metrics: Sequence[Point]) -> None:
        row = dbapi.execute("SELECT lifecycle_stage FROM runs WHERE run_uuid = ?", (run_id,))
        found = row.fetchone()
        self._require_stage(run_id, None if found is None else str(found[0]))
        self.metrics.insert_raw(dbapi, run_id, metrics)

    def log_columns(
        self,
        run_id: str,
        keys: Sequence[str],
        values: Sequence[float],
        steps: Sequence[int],
        timestamps: Sequence[int],
        params: Mapping[str, object],
        tags: Mapping[str, object],
    ) -> int:
        """The native SDK's batch: columns instead of objects, no per-point allocation."""
        if not len(keys) == len(values) == len(steps) == len(timestamps):
            raise InvalidParameterValue(
                "metrics.key, metrics.value, metrics.step and metrics.timestamp must have the "
                f"same length (got {len(keys)}, {len(values)}, {len(steps)}, {len(timestamps)})"
            )
        for key in set(keys):
            v.validate_key("metric", key)
        clean_params = dict(v.validate_param(k, val) for k, val in params.items())
        clean_tags = dict(v.validate_tag(k, val) for k, val in tags.items())
        with self.db.write() as conn:
            self._check_writable(conn, run_id)
            self.runs.log_params(conn, run_id, clean_params)
            if clean_tags:
                self.runs.set_tags(conn, run_id, clean_tags)
            self.metrics.insert_columns(conn, run_id, keys, values, steps, timestamps)
        return len(keys)

    def delete_tag(self, run_id: str, key: str) -> None:
        self._writable_run(run_id)
        self.runs.delete_tag(run_id, key)

    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[DatasetInput] = (),
        model_ids: Sequence[str] = (),
    ) -> None:
        info = self._writable_run(run_id)
        with self.db.write() as conn:
            self.runs.log_inputs(conn, run_id, int(info.experiment_id), datasets)
            self.runs.link_models(conn, run_id, "input", [(m, 0) for m in model_ids])

    def log_outputs(self, run_id: str, models: Sequence[tuple[str, int]]) -> None:
        self._writable_run(run_id)
        with self.db.write() as conn:
            self.runs.link_models(conn, run_id, "output", models)

    # --- reads of metric history ---------------------------------------------
    def metric_history(
        self, run_id: str, key: str, max_results: int | None = None, page_token: str | None = None
    ) -> tuple[list[Metric], str | None]:
        from lapis.tracking.search.paging import decode_page_token, encode_page_token

        self.runs.get_info(run_id)
        offset = decode_page_token(page_token)
        if max_results is None and page_token is None:
            return self.metrics.history(run_id, key), None
        limit = min(max_results or MAX_HISTORY_PAGE, MAX_HISTORY_PAGE)
        points = self.metrics.history(run_id, key, offset, limit + 1)
        token = encode_page_token(offset + limit) if len(points) > limit else None
        return points[:limit], token

    def metric_history_sampled(
        self,
        run_ids: Sequence[str],
        key: str,
        max_results: int,
        start_step: int | None,
        end_step: int | None,
    ) -> list[Metric]:
        if (start_step is None) != (end_step is None):
            raise InvalidParameterValue(
                "If either start step or end step are specified, both must be specified."
            )
        if start_step is not None and end_step is not None and start_step > end_step:
            raise InvalidParameterValue(
                "end_step must be greater than start_step. "
                f"Found start_step={start_step} and end_step={end_step}."
            )
        out: list[Metric] = []
        for run_id in run_ids:
            self.runs.get_info(run_id)
            out.extend(self.metrics.sampled(run_id, key, max_results, start_step, end_step))
        return out

    # --- the studio's views (read-only; their SQL lives in run_table and store.sql.series) ---
    def experiment_stats(self) -> dict[int, tuple[int, int | None]]:
        """Per experiment id: (runs, last run start), for the experiments list."""
        from lapis.tracking import run_table

        with self.db.read() as conn:
            return run_table.experiment_stats(conn)

    def runs_page(self, experiment: Experiment, query: RunsQuery) -> RunsPage:
        from lapis.tracking import run_table

        return run_table.runs_page(self.db, experiment, query)

    def metric_series(
        self,
        run_id: str,
        keys: Sequence[str],
        x: str = "step",
        points: int = 1000,
        x_range: tuple[int, int] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Downsampled series for charts (min/max kept per bucket: spikes stay visible)."""
        from lapis.store.sql.series import SeriesReader

        self.runs.get_info(run_id)
        return SeriesReader(self.db).read(run_id, keys, x, points, x_range)


def _not_active(run_id: str, stage: str) -> InvalidParameterValue:
    return InvalidParameterValue(
        f"The run {run_id} must be in the 'active' state. Current state is {stage}."
    )


def _require_active_run(info: RunInfo) -> None:
    if info.lifecycle_stage != LifecycleStage.ACTIVE.value:
        raise _not_active(info.run_id, info.lifecycle_stage)


def _require_active_experiment(exp: Experiment) -> None:
    if exp.lifecycle_stage != LifecycleStage.ACTIVE.value:
        raise InvalidParameterValue(
            f"The experiment {exp.experiment_id} must be in the 'active' state. "
            f"Current state is {exp.lifecycle_stage}."
        )


def _check_max_results(max_results: int, limit: int) -> None:
    if not 0 < max_results <= limit:
        raise InvalidParameterValue(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be a "
            f"positive integer at most {limit}"
        )
