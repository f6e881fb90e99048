"""How far a job's token reaches: its own run, runs it started, its own experiment.

A job logs to the run Lapis made for it (``MLFLOW_RUN_ID``). It may also start
runs of its own in that experiment — nested runs of a sweep inside one job —
which are tagged ``lapis.job`` with the job's name when created with its
token, and may then write to those. Everything else that names a run, an
experiment or a logged model is refused with 403, even when the submitter could
reach it: a leaked job token is worth one run, not the workspace.

Callers pull the identifiers out of the request (MLflow's ``run_id`` /
``run_uuid`` / ``experiment_id``…, path parameters, an artifact path's owner)
and hand them here; a request of a job that names none of them, on a route that
is not about registered models, is refused too (listing every experiment, say).
"""

from __future__ import annotations

from collections.abc import Iterable

from lapis.entities.auth import JOB_TAG, Principal
from lapis.errors import PermissionDenied, ResourceDoesNotExist
from lapis.store.sql.logged_models import LoggedModelStore
from lapis.tracking.service import TrackingService

RUN_KEYS = ("run_id", "run_uuid", "source_run_id")
EXPERIMENT_KEYS = ("experiment_id",)


def _refuse(principal: Principal, what: str) -> PermissionDenied:
    scope = principal.job
    assert scope is not None
    return PermissionDenied(
        f"The token of job {scope.job} reaches only its own run {scope.run_id} (and runs it "
        f"started) in experiment {scope.experiment_id}; not {what}"
    )


class JobReach:
    def __init__(self, tracking: TrackingService) -> None:
        self.tracking = tracking

    def check(
        self,
        principal: Principal,
        run_ids: Iterable[str] = (),
        experiment_ids: Iterable[str] = (),
        experiment_names: Iterable[str] = (),
        model_ids: Iterable[str] = (),
        registry: bool = False,
    ) -> None:
        """Refuse unless every named object is within the job's reach."""
        scope = principal.job
        if scope is None:
            return
        named = False
        for run_id in run_ids:
            named = True
            if run_id != scope.run_id and not self._started_by_job(run_id, scope.job):
                raise _refuse(principal, f"run {run_id}")
        for exp in experiment_ids:
            named = True
            if str(exp) != scope.experiment_id:
                raise _refuse(principal, f"experiment {exp}")
        for name in experiment_names:
            named = True
            try:
                exp_id = self.tracking.get_experiment_by_name(name).experiment_id
            except ResourceDoesNotExist:
                exp_id = None
            if exp_id != scope.experiment_id:
                raise _refuse(principal, f"experiment '{name}'")
        for model_id in model_ids:
            named = True
            try:
                model = LoggedModelStore(self.tracking.db).get(model_id)
            except ResourceDoesNotExist:
                continue  # the route answers 404 itself
            if model.experiment_id != scope.experiment_id:
                raise _refuse(principal, f"logged model {model_id}")
        if not named and not registry:
            raise _refuse(principal, "a request that names no run of its own")

    def _started_by_job(self, run_id: str, job: str) -> bool:
        try:
            run = self.tracking.get_run(run_id)
        except ResourceDoesNotExist:
            return True  # let the route answer 404, as it would to anyone
        return run.tags.get(JOB_TAG) == job
