"""Which run or logged model owns an artifact path.

The artifact proxy takes store-relative paths from any client, so every write
and delete must first be pinned to one owner: a run
(``<experiment location>/<run_id>/artifacts/…``) or an MLflow logged model
(``<experiment location>/models/<model_id>/artifacts/…``) or an MLflow trace's spans
(``<experiment location>/traces/<trace_id>/artifacts/traces.json``). The owner is looked
up in the metadata store and its recorded location must be the path's prefix —
parsing the path alone would let ``1/<someone-else's run id>/artifacts`` pass.
A path that is an owner's root, or no owner's at all (the store root, an
experiment's folder, registered model versions under ``models/``), has no owner
and is never deleted through the proxy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lapis.artifacts.store import proxied_path
from lapis.errors import ResourceDoesNotExist
from lapis.store.sql.logged_models import LoggedModelStore
from lapis.store.sql.traces import TraceStore
from lapis.tracking.service import TrackingService

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
_TRACE_ID = re.compile(r"^tr-[0-9a-f]{32}$")


@dataclass(frozen=True, slots=True)
class ArtifactOwner:
    kind: str  # "run", "logged_model" or "trace"
    id: str
    root: str  # the owner's store-relative artifact root
    experiment_id: str


def artifact_owner(tracking: TrackingService, rel: str) -> ArtifactOwner | None:
    """The owner whose artifact root is a proper prefix of ``rel``, or None."""
    parts = rel.split("/") if rel else []
    for i in range(1, len(parts) - 1):
        if parts[i + 1] != "artifacts" or i + 2 >= len(parts):
            continue
        candidate = parts[i]
        root = "/".join(parts[: i + 2])
        try:
            if _RUN_ID.match(candidate):
                run = tracking.get_run(candidate)
                if proxied_path(run.info.artifact_uri) == root:
                    return ArtifactOwner("run", candidate, root, run.info.experiment_id)
            elif _MODEL_ID.match(candidate) and parts[i - 1] == "models":
                model = LoggedModelStore(tracking.db).get(candidate)
                if proxied_path(model.artifact_location) == root:
                    return ArtifactOwner("logged_model", candidate, root, model.experiment_id)
            elif _TRACE_ID.match(candidate) and parts[i - 1] == "traces":
                trace = TraceStore(tracking.db).get(candidate)
                if proxied_path(trace.tags.get("mlflow.artifactLocation", "")) == root:
                    return ArtifactOwner("trace", candidate, root, trace.experiment_id)
        except ResourceDoesNotExist:
            continue
    return None
