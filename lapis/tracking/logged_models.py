"""MLflow 3 logged models: what ``mlflow.<flavor>.log_model`` creates.

A logged model lives in an experiment, is usually produced by a run, and owns
an artifact folder (``<experiment location>/models/<model_id>/artifacts``)
that the client fills through the artifact proxy before marking it READY.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from lapis.entities.tracking import LoggedModel, Metric
from lapis.errors import InvalidParameterValue
from lapis.store.sql.logged_models import LoggedModelStore
from lapis.tracking import validation as v
from lapis.tracking.service import TrackingService
from lapis.util import now_ms, random_name

STATUSES = ("PENDING", "READY", "FAILED")


class LoggedModelService:
    def __init__(self, tracking: TrackingService) -> None:
        self.tracking = tracking
        self.store = LoggedModelStore(tracking.db)

    def create(
        self,
        experiment_id: object,
        name: str | None,
        source_run_id: str | None,
        model_type: str | None,
        params: Mapping[str, str],
        tags: Mapping[str, str],
    ) -> LoggedModel:
        exp = self.tracking.get_experiment(experiment_id)
        if exp.lifecycle_stage != "active":
            raise InvalidParameterValue(f"The experiment {exp.experiment_id} must be active.")
        # as MLflow's server: the source run is recorded, not looked up (a model may be
        # logged from a run tracked elsewhere)
        model_id = f"m-{uuid.uuid4().hex}"
        now = now_ms()
        model = LoggedModel(
            model_id=model_id,
            experiment_id=exp.experiment_id,
            name=name or random_name(),
            artifact_location=f"{exp.artifact_location.rstrip('/')}/models/{model_id}/artifacts",
            creation_timestamp=now,
            last_updated_timestamp=now,
            status="PENDING",
            status_message=None,
            lifecycle_stage="active",
            model_type=model_type,
            source_run_id=source_run_id or None,
            params=dict(v.validate_param(k, val) for k, val in params.items()),
            tags=dict(v.validate_tag(k, val) for k, val in tags.items()),
        )
        self.store.create(model)
        return model

    def get(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        model = self.store.get(model_id)
        if model.lifecycle_stage != "active" and not allow_deleted:
            from lapis.errors import ResourceDoesNotExist

            raise ResourceDoesNotExist(f"Logged model with ID '{model_id}' not found.")
        return model

    def finalize(self, model_id: str, status: str) -> LoggedModel:
        if status not in STATUSES:
            raise InvalidParameterValue(
                f"Invalid logged model status '{status}'; expected one of {', '.join(STATUSES)}"
            )
        self.get(model_id)
        self.store.update(model_id, status=status)
        return self.get(model_id)

    def delete(self, model_id: str) -> None:
        self.get(model_id)
        self.store.update(model_id, lifecycle_stage="deleted")

    def log_params(self, model_id: str, params: Mapping[str, Any]) -> None:
        self.get(model_id)
        self.store.log_params(model_id, dict(v.validate_param(k, val) for k, val in params.items()))

    def set_tags(self, model_id: str, tags: Mapping[str, Any]) -> None:
        self.get(model_id)
        self.store.set_tags(model_id, dict(v.validate_tag(k, val) for k, val in tags.items()))

    def delete_tag(self, model_id: str, key: str) -> None:
        self.get(model_id)
        self.store.delete_tag(model_id, key)

    def search(
        self,
        experiment_ids: Sequence[object],
        filter_string: str = "",
        order_by: Sequence[tuple[str, bool]] = (),
        max_results: int = 100,
        page_token: str | None = None,
        datasets: Sequence[Mapping[str, Any]] = (),
    ) -> tuple[list[LoggedModel], str | None]:
        """Filter and order in Python: an experiment holds few models, and this keeps
        metric filters (``metrics.acc > 0.9``) on the same code as attribute ones.

        ``datasets`` (``[{"dataset_name", "dataset_digest"?}]``) narrows the metrics
        that filters and ordering look at to those measured on one of them, and
        without a metric filter keeps only models with a metric on one of them
        (MLflow's rule).
        """
        from lapis.tracking.logged_model_filter import matches, metric_clauses
        from lapis.tracking.search.paging import decode_page_token, encode_page_token

        wanted = _dataset_filters(datasets)
        ids = self.store.ids_in([v.parse_experiment_id(e) for e in experiment_ids])
        found: list[tuple[LoggedModel, LoggedModel]] = []  # (as filters see it, as stored)
        for m in self.store.get_many(ids):
            view = m
            if wanted:
                on = [p for p in m.metrics if _on_datasets(p, wanted)]
                if not on and not metric_clauses(filter_string):
                    continue
                view = replace(m, metrics=on)
            if matches(view, filter_string):
                found.append((view, m))
        for field, ascending in reversed(list(order_by)):
            found.sort(key=partial(_by_view, field=field), reverse=not ascending)
        models = [m for _, m in found]
        offset = decode_page_token(page_token)
        page = models[offset : offset + max_results]
        token = (
            encode_page_token(offset + max_results) if len(models) > offset + max_results else None
        )
        return page, token


def _by_view(pair: tuple[LoggedModel, LoggedModel], field: str) -> tuple[int, Any]:
    from lapis.tracking.logged_model_filter import sort_key

    return sort_key(pair[0], field)


def _dataset_filters(datasets: Sequence[Mapping[str, Any]]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for d in datasets:
        if not isinstance(d, Mapping) or not d.get("dataset_name"):
            raise InvalidParameterValue(
                "`dataset_name` in the `datasets` clause must be specified."
            )
        digest = d.get("dataset_digest")
        out.append((str(d["dataset_name"]), None if digest is None else str(digest)))
    return out


def _on_datasets(point: Metric, wanted: list[tuple[str, str | None]]) -> bool:
    return any(
        point.dataset_name == name and (digest is None or point.dataset_digest == digest)
        for name, digest in wanted
    )
