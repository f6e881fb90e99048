"""The action every route needs: one table, read by the authorizer and by the tests.

Keys are ``(METHOD, path template)`` exactly as the router declares them; MLflow's
routes are keyed by their path below the ``/api/2.0/mlflow`` prefix (the
catch-all dispatcher serves both prefixes). ``OPEN`` routes need no token at
all; ``SELF`` routes need a valid token and nothing else (a person's own
account). A route missing from this table is refused with 403 at run time
(never silently allowed), and ``tests/integration/test_rbac.py`` fails for it.

Resource rules that depend on *which* object is touched — a job's token
reaching only its own run, a compute instance used only by its owner — are
not actions; they are checked where the object is known
(:mod:`lapis.auth.reach`, the job service).
"""

from __future__ import annotations

from lapis.auth.actions import SELF

OPEN = frozenset({("GET", "/healthz"), ("GET", "/signin"), ("POST", "/signin")})

EXP = "workspaces/experiments"
RUNS = "workspaces/experiments/runs"
JOBS = "workspaces/jobs"
COMP = "workspaces/computes"
ENVS = "workspaces/environments"
DATA = "workspaces/datastores"
MODELS = "workspaces/models"
ONLINE = "workspaces/onlineEndpoints"
BATCH = "workspaces/batchEndpoints"
NB = "workspaces/notebooks/storage"
ART = "/api/2.0/mlflow-artifacts/artifacts"
AJAX_ART = "/ajax-api/2.0/mlflow-artifacts/artifacts"

ROUTE_ACTIONS: dict[tuple[str, str], str] = {
    # --- server ---------------------------------------------------------------------
    ("GET", "/openapi.json"): "workspaces/read",
    ("GET", "/docs"): "workspaces/read",
    ("GET", "/docs/oauth2-redirect"): "workspaces/read",
    ("GET", "/redoc"): "workspaces/read",
    ("GET", "/api/3.0/mlflow/server-info"): "workspaces/read",
    ("GET", "/metrics"): "workspaces/metrics/read",
    ("GET", "/api/v1/whoami"): SELF,
    # --- tracking (native) ----------------------------------------------------------
    ("GET", "/api/v1/experiments"): f"{EXP}/read",
    ("GET", "/api/v1/experiments/{id_or_name}"): f"{EXP}/read",
    ("POST", "/api/v1/runs"): f"{RUNS}/write",
    ("GET", "/api/v1/runs"): f"{RUNS}/read",
    ("GET", "/api/v1/runs/{run_id}"): f"{RUNS}/read",
    ("GET", "/api/v1/runs/{run_id}/metrics/{key:path}/history"): f"{RUNS}/read",
    ("POST", "/api/v1/runs/{run_id}/log"): f"{RUNS}/write",
    ("POST", "/api/v1/runs/{run_id}/end"): f"{RUNS}/write",
    # --- jobs -----------------------------------------------------------------------
    ("PUT", "/api/v1/snapshots/{digest}"): f"{JOBS}/write",
    ("HEAD", "/api/v1/snapshots/{digest}"): f"{JOBS}/write",
    ("POST", "/api/v1/jobs"): f"{JOBS}/write",
    ("GET", "/api/v1/jobs"): f"{JOBS}/read",
    ("GET", "/api/v1/jobs/{name}"): f"{JOBS}/read",
    ("POST", "/api/v1/jobs/{name}/cancel"): f"{JOBS}/write",
    ("GET", "/api/v1/jobs/{name}/logs"): f"{JOBS}/read",
    ("GET", "/api/v1/jobs/{name}/files"): f"{JOBS}/read",
    ("GET", "/api/v1/jobs/{name}/steps"): f"{JOBS}/read",
    ("GET", "/api/v1/jobs/{name}/outputs/{output}/files"): f"{JOBS}/read",
    ("GET", "/api/v1/jobs/{name}/outputs/{output}/files/{path:path}"): f"{JOBS}/read",
    # --- computes -------------------------------------------------------------------
    ("POST", "/api/v1/computes"): f"{COMP}/write",
    ("GET", "/api/v1/computes"): f"{COMP}/read",
    ("GET", "/api/v1/computes/{name}"): f"{COMP}/read",
    ("GET", "/api/v1/computes/{name}/logs"): f"{COMP}/read",
    ("POST", "/api/v1/environments/{name}/versions/{version}/kernel"): f"{ENVS}/write",
    ("PATCH", "/api/v1/computes/{name}"): f"{COMP}/write",
    ("POST", "/api/v1/computes/{name}/start"): f"{COMP}/start/action",
    ("POST", "/api/v1/computes/{name}/stop"): f"{COMP}/stop/action",
    ("POST", "/api/v1/computes/{name}/restart"): f"{COMP}/restart/action",
    ("POST", "/api/v1/computes/{name}/preempt"): f"{COMP}/restart/action",
    ("DELETE", "/api/v1/computes/{name}"): f"{COMP}/delete",
    ("GET", "/api/v1/compute-sizes"): f"{COMP}/read",
    # --- datastores: reading one never shows its credential; listSecrets does -------
    ("POST", "/api/v1/datastores"): f"{DATA}/write",
    ("GET", "/api/v1/datastores"): f"{DATA}/read",
    ("GET", "/api/v1/datastores/{name}"): f"{DATA}/read",
    ("DELETE", "/api/v1/datastores/{name}"): f"{DATA}/delete",
    ("POST", "/api/v1/datastores/{name}/listSecrets"): f"{DATA}/listsecrets/action",
    ("GET", "/api/v1/datastores/{name}/browse"): f"{DATA}/listsecrets/action",
    # --- data assets (and the uploads of local data behind them) -----------------------
    ("POST", "/api/v1/data"): "workspaces/data/write",
    ("GET", "/api/v1/data"): "workspaces/data/read",
    ("GET", "/api/v1/data/{name}/versions"): "workspaces/data/read",
    ("GET", "/api/v1/data/{name}/versions/{version}"): "workspaces/data/read",
    ("GET", "/api/v1/data/{name}/jobs"): "workspaces/data/read",
    ("POST", "/api/v1/schedules"): "workspaces/schedules/write",
    ("GET", "/api/v1/schedules"): "workspaces/schedules/read",
    ("GET", "/api/v1/schedules/{name}"): "workspaces/schedules/read",
    ("GET", "/api/v1/schedules/{name}/jobs"): "workspaces/schedules/read",
    ("POST", "/api/v1/schedules/{name}/enable"): "workspaces/schedules/write",
    ("POST", "/api/v1/schedules/{name}/disable"): "workspaces/schedules/write",
    ("DELETE", "/api/v1/schedules/{name}"): "workspaces/schedules/delete",
    # --- the file share (notebooks) ------------------------------------------------------
    ("GET", "/api/v1/files"): f"{NB}/read",
    ("DELETE", "/api/v1/files"): f"{NB}/delete",
    ("GET", "/api/v1/files/content"): f"{NB}/read",
    ("PUT", "/api/v1/files/content"): f"{NB}/write",
    ("POST", "/api/v1/files/folders"): f"{NB}/write",
    ("POST", "/api/v1/files/rename"): f"{NB}/write",
    ("POST", "/api/v1/components"): "workspaces/components/write",
    ("GET", "/api/v1/components"): "workspaces/components/read",
    ("GET", "/api/v1/components/{name}/versions"): "workspaces/components/read",
    ("GET", "/api/v1/components/{name}/versions/{version}"): "workspaces/components/read",
    ("POST", "/api/v1/components/{name}/archive"): "workspaces/components/write",
    ("POST", "/api/v1/components/{name}/restore"): "workspaces/components/write",
    ("GET", "/api/v1/data/{name}/versions/{version}/files"): "workspaces/data/read",
    ("GET", "/api/v1/data/{name}/versions/{version}/files/{path:path}"): "workspaces/data/read",
    ("GET", "/api/v1/data/{name}/versions/{version}/preview"): "workspaces/data/read",
    ("POST", "/api/v1/data/{name}/archive"): "workspaces/data/write",
    ("POST", "/api/v1/data/{name}/restore"): "workspaces/data/write",
    ("POST", "/api/v1/data/uploads"): "workspaces/data/write",
    ("PUT", "/api/v1/data/uploads/{upload}/files/{path:path}"): "workspaces/data/write",
    # --- environments ---------------------------------------------------------------
    ("POST", "/api/v1/environments"): f"{ENVS}/write",
    ("GET", "/api/v1/environments"): f"{ENVS}/read",
    ("GET", "/api/v1/environments/{name}"): f"{ENVS}/read",
    ("GET", "/api/v1/environments/{name}/versions"): f"{ENVS}/read",
    ("GET", "/api/v1/environments/{name}/versions/{version}"): f"{ENVS}/read",
    ("POST", "/api/v1/environments/{name}/versions/{version}/build"): f"{ENVS}/write",
    ("POST", "/api/v1/environments/{name}/versions/{version}/archive"): f"{ENVS}/write",
    ("GET", "/api/v1/environments/{name}/versions/{version}/build-log"): f"{ENVS}/read",
    # --- models ---------------------------------------------------------------------
    ("POST", "/api/v1/models"): f"{MODELS}/write",
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): f"{MODELS}/read",
    ("GET", "/api/v1/models"): f"{MODELS}/read",
    ("GET", "/api/v1/models/{name}/versions/{version}"): f"{MODELS}/read",
    ("PATCH", "/api/v1/models/{name}/versions/{version}"): f"{MODELS}/write",
    ("POST", "/api/v1/models/{name}/versions/{version}/archive"): f"{MODELS}/write",
    ("POST", "/api/v1/models/{name}/versions/{version}/restore"): f"{MODELS}/write",
    ("DELETE", "/api/v1/models/{name}/versions/{version}"): f"{MODELS}/delete",
    ("PUT", "/api/v1/models/{name}/versions/{version}/files/{path:path}"): f"{MODELS}/write",
    ("POST", "/api/v1/models/{name}/versions/{version}/ready"): f"{MODELS}/write",
    ("GET", "/api/v1/models/{name}/versions/{version}/files"): f"{MODELS}/read",
    # --- online endpoints and deployments -------------------------------------------
    ("POST", "/api/v1/endpoints"): f"{ONLINE}/write",
    ("GET", "/api/v1/endpoints"): f"{ONLINE}/read",
    ("GET", "/api/v1/endpoints/{name}"): f"{ONLINE}/read",
    ("PATCH", "/api/v1/endpoints/{name}"): f"{ONLINE}/write",
    ("DELETE", "/api/v1/endpoints/{name}"): f"{ONLINE}/delete",
    ("POST", "/api/v1/endpoints/{name}/listKeys"): f"{ONLINE}/listkeys/action",
    ("POST", "/api/v1/endpoints/{name}/regenerateKeys"): f"{ONLINE}/regenerateKeys/action",
    ("POST", "/api/v1/endpoints/{name}/token"): f"{ONLINE}/token/action",
    ("GET", "/api/v1/endpoints/{name}/metrics"): f"{ONLINE}/read",
    ("POST", "/api/v1/endpoints/{endpoint}/deployments"): f"{ONLINE}/deployments/write",
    ("GET", "/api/v1/endpoints/{endpoint}/deployments"): f"{ONLINE}/deployments/read",
    ("GET", "/api/v1/endpoints/{endpoint}/deployments/{name}"): f"{ONLINE}/deployments/read",
    ("PATCH", "/api/v1/endpoints/{endpoint}/deployments/{name}"): f"{ONLINE}/deployments/write",
    ("DELETE", "/api/v1/endpoints/{endpoint}/deployments/{name}"): f"{ONLINE}/deployments/delete",
    ("GET", "/api/v1/endpoints/{endpoint}/deployments/{name}/logs"): f"{ONLINE}/deployments/read",
    # --- batch endpoints ------------------------------------------------------------
    ("POST", "/api/v1/batchEndpoints"): f"{BATCH}/write",
    ("GET", "/api/v1/batchEndpoints"): f"{BATCH}/read",
    ("GET", "/api/v1/batchEndpoints/{name}"): f"{BATCH}/read",
    ("PATCH", "/api/v1/batchEndpoints/{name}"): f"{BATCH}/write",
    ("DELETE", "/api/v1/batchEndpoints/{name}"): f"{BATCH}/delete",
    ("POST", "/api/v1/batchEndpoints/{endpoint}/deployments"): f"{BATCH}/deployments/write",
    ("PUT", "/api/v1/batchEndpoints/{endpoint}/deployments/{name}"): f"{BATCH}/deployments/write",
    ("GET", "/api/v1/batchEndpoints/{endpoint}/deployments"): f"{BATCH}/deployments/read",
    ("GET", "/api/v1/batchEndpoints/{endpoint}/deployments/{name}"): f"{BATCH}/deployments/read",
    ("DELETE", "/api/v1/batchEndpoints/{endpoint}/deployments/{name}"): (
        f"{BATCH}/deployments/delete"
    ),
    ("POST", "/api/v1/batchEndpoints/{name}/invoke"): f"{BATCH}/write",
    ("GET", "/api/v1/batchEndpoints/{name}/jobs"): f"{BATCH}/read",
    # --- the MLflow artifact proxy --------------------------------------------------
    ("PUT", f"{ART}/{{artifact_path:path}}"): f"{RUNS}/write",
    ("GET", f"{ART}/{{artifact_path:path}}"): f"{RUNS}/read",
    ("DELETE", f"{ART}/{{artifact_path:path}}"): f"{RUNS}/delete",
    ("GET", ART): f"{RUNS}/read",
    ("PUT", f"{AJAX_ART}/{{artifact_path:path}}"): f"{RUNS}/write",
    ("GET", f"{AJAX_ART}/{{artifact_path:path}}"): f"{RUNS}/read",
    ("DELETE", f"{AJAX_ART}/{{artifact_path:path}}"): f"{RUNS}/delete",
    ("GET", AJAX_ART): f"{RUNS}/read",
    # --- access control and audit ---------------------------------------------------
    ("GET", "/api/v1/users"): "workspaces/users/read",
    ("POST", "/api/v1/users"): "workspaces/users/write",
    ("GET", "/api/v1/users/{name}"): SELF,  # own record; others need users/read
    ("POST", "/api/v1/users/{name}/disable"): "workspaces/users/write",
    ("POST", "/api/v1/users/{name}/enable"): "workspaces/users/write",
    ("POST", "/api/v1/users/{name}/password"): SELF,  # own password; others need users/write
    ("GET", "/api/v1/tokens"): SELF,
    ("POST", "/api/v1/tokens"): SELF,  # for oneself; for another user needs users/write
    ("POST", "/api/v1/tokens/rotate"): SELF,
    ("POST", "/api/v1/tokens/{token_id}/revoke"): SELF,
    ("GET", "/api/v1/roles"): "workspaces/roles/read",
    ("POST", "/api/v1/roles"): "workspaces/roles/write",
    ("GET", "/api/v1/roles/{name}"): "workspaces/roles/read",
    ("DELETE", "/api/v1/roles/{name}"): "workspaces/roles/write",
    ("GET", "/api/v1/actions"): SELF,
    ("POST", "/api/v1/roleAssignments"): "workspaces/roleAssignments/write",
    ("DELETE", "/api/v1/roleAssignments"): "workspaces/roleAssignments/write",
    ("GET", "/api/v1/audit"): "workspaces/audit/read",
    # --- studio ---------------------------------------------------------------------
    ("POST", "/signout"): SELF,
    ("GET", "/"): "workspaces/read",
    ("GET", "/experiments"): f"{EXP}/read",
    ("GET", "/experiments/{experiment_id}"): f"{RUNS}/read",
    ("GET", "/runs/{run_id}"): f"{RUNS}/read",
    ("GET", "/runs/{run_id}/artifacts"): f"{RUNS}/read",
    ("GET", "/runs/{run_id}/live"): f"{RUNS}/read",
    ("GET", "/traces/{trace_id}"): f"{RUNS}/read",
    ("GET", "/experiments/{experiment_id}/traces"): f"{RUNS}/read",
    ("GET", "/runs/{run_id}/artifacts/download"): f"{RUNS}/read",
    ("GET", "/ui/runs/{run_id}/metric-series"): f"{RUNS}/read",
    ("GET", "/compare"): f"{RUNS}/read",
    ("GET", "/jobs"): f"{JOBS}/read",
    ("GET", "/jobs/{name}"): f"{JOBS}/read",
    ("GET", "/jobs/{name}/status"): f"{JOBS}/read",
    ("POST", "/jobs/{name}/cancel"): f"{JOBS}/write",
    ("POST", "/jobs/{name}/resubmit"): f"{JOBS}/write",
    ("POST", "/jobs/{name}/outputs/{output}/register"): f"{MODELS}/write",
    ("GET", "/jobs/{name}/log/stream"): f"{JOBS}/read",
    ("GET", "/jobs/{name}/files"): f"{JOBS}/read",
    ("GET", "/jobs/{name}/steps"): f"{JOBS}/read",
    ("GET", "/jobs/{name}/download"): f"{JOBS}/read",
    ("GET", "/compute"): f"{COMP}/read",
    ("GET", "/compute/_rows"): f"{COMP}/read",
    ("GET", "/compute/_new"): f"{COMP}/write",
    ("GET", "/compute/_new/check-name"): f"{COMP}/write",
    ("POST", "/compute"): f"{COMP}/write",
    ("GET", "/compute/{name}"): f"{COMP}/read",
    ("GET", "/compute/{name}/state"): f"{COMP}/read",
    # the action depends on the path ({action}: start, stop, restart, delete)
    ("POST", "/compute/{name}/{action}"): f"{COMP}/{{action}}",
    ("GET", "/data"): f"{DATA}/read",
    ("GET", "/notebooks"): f"{NB}/read",
    ("GET", "/notebooks/download"): f"{NB}/read",
    ("POST", "/notebooks/upload"): f"{NB}/write",
    ("POST", "/notebooks/new"): f"{NB}/write",
    ("POST", "/notebooks/rename"): f"{NB}/write",
    ("POST", "/notebooks/delete"): f"{NB}/delete",
    ("GET", "/components"): "workspaces/components/read",
    ("GET", "/components/{name}"): "workspaces/components/read",
    ("GET", "/data/assets/{name}"): "workspaces/data/read",
    ("GET", "/data/assets/{name}/preview"): "workspaces/data/read",  # + listsecrets if keyed
    ("GET", "/data/datastores/{name}"): f"{DATA}/read",
    ("GET", "/data/datastores/{name}/files"): f"{DATA}/read",  # files only with listsecrets
    ("GET", "/environments"): f"{ENVS}/read",
    ("GET", "/environments/{name}"): f"{ENVS}/read",
    ("GET", "/environments/{name}/versions/{version}/build-status"): f"{ENVS}/read",
    ("GET", "/environments/{name}/versions/{version}/log"): f"{ENVS}/read",
    ("POST", "/environments/{name}/versions/{version}/build"): f"{ENVS}/write",
    ("GET", "/models"): f"{MODELS}/read",
    ("GET", "/models/{name}"): f"{MODELS}/read",
    ("GET", "/models/{name}/versions/{version}"): f"{MODELS}/read",
    ("GET", "/models/{name}/versions/{version}/files/{path:path}"): f"{MODELS}/read",
    ("GET", "/batch-endpoints/{name}"): f"{BATCH}/read",
    ("GET", "/batch-endpoints/{name}/jobs"): f"{BATCH}/read",
    ("POST", "/batch-endpoints/{name}/invoke"): f"{BATCH}/write",
    ("POST", "/batch-endpoints/{name}/deployments/{deployment}/default"): f"{BATCH}/write",
    ("GET", "/endpoints"): f"{ONLINE}/read",
    ("GET", "/endpoints/{name}"): f"{ONLINE}/read",
    ("GET", "/endpoints/{name}/deployments"): f"{ONLINE}/deployments/read",
    ("POST", "/endpoints/{name}/traffic"): f"{ONLINE}/write",
    ("POST", "/endpoints/{name}/test"): f"{ONLINE}/score/action",
    ("GET", "/endpoints/{name}/telemetry"): f"{ONLINE}/read",
    ("GET", "/endpoints/{name}/deployments/{deployment}/logs"): f"{ONLINE}/deployments/read",
    ("GET", "/admin/users"): "workspaces/users/read",
    ("POST", "/admin/users"): "workspaces/users/write",
    ("POST", "/admin/users/{name}/{verb}"): "workspaces/users/write",
    ("POST", "/admin/roles"): "workspaces/roleAssignments/write",
    ("GET", "/admin/roles"): "workspaces/roles/read",
    ("GET", "/admin/audit"): "workspaces/audit/read",
    ("GET", "/account"): SELF,
    ("POST", "/account/tokens"): SELF,
    ("POST", "/account/tokens/{token_id}/revoke"): SELF,
}

# MLflow's protocol, keyed by the path below /api/2.0/mlflow (and /ajax-api/2.0/mlflow).
MLFLOW_ACTIONS: dict[tuple[str, str], str] = {
    ("POST", "/runs/create"): f"{RUNS}/write",
    ("POST", "/runs/update"): f"{RUNS}/write",
    ("GET", "/runs/get"): f"{RUNS}/read",
    ("POST", "/runs/delete"): f"{RUNS}/delete",
    ("POST", "/runs/restore"): f"{RUNS}/delete",
    ("POST", "/runs/search"): f"{RUNS}/read",
    ("POST", "/runs/log-metric"): f"{RUNS}/write",
    ("POST", "/runs/log-parameter"): f"{RUNS}/write",
    ("POST", "/runs/set-tag"): f"{RUNS}/write",
    ("POST", "/runs/delete-tag"): f"{RUNS}/write",
    ("POST", "/runs/log-batch"): f"{RUNS}/write",
    ("POST", "/runs/log-inputs"): f"{RUNS}/write",
    ("POST", "/runs/outputs"): f"{RUNS}/write",
    ("POST", "/runs/log-model"): f"{RUNS}/write",
    ("GET", "/metrics/get-history"): f"{RUNS}/read",
    ("GET", "/metrics/get-history-bulk-interval"): f"{RUNS}/read",
    ("GET", "/metrics/get-history-bulk"): f"{RUNS}/read",
    ("GET", "/artifacts/list"): f"{RUNS}/read",
    ("POST", "/experiments/create"): f"{EXP}/write",
    ("GET", "/experiments/get"): f"{EXP}/read",
    ("GET", "/experiments/get-by-name"): f"{EXP}/read",
    ("POST", "/experiments/search"): f"{EXP}/read",
    ("GET", "/experiments/search"): f"{EXP}/read",
    ("POST", "/experiments/update"): f"{EXP}/write",
    ("POST", "/experiments/delete"): f"{EXP}/delete",
    ("POST", "/experiments/restore"): f"{EXP}/delete",
    ("POST", "/experiments/set-experiment-tag"): f"{EXP}/write",
    ("POST", "/experiments/delete-experiment-tag"): f"{EXP}/write",
    # MLflow 3 traces (v3 paths: /traces, /traces/search, /traces/{trace_id}) and their tags
    ("POST", "/traces"): f"{RUNS}/write",
    ("POST", "/traces/search"): f"{RUNS}/read",
    ("GET", "/traces"): f"{RUNS}/read",
    ("GET", "/traces/{trace_id}"): f"{RUNS}/read",
    ("GET", "/traces/{trace_id}/info"): f"{RUNS}/read",
    ("PATCH", "/traces/{trace_id}/tags"): f"{RUNS}/write",
    ("DELETE", "/traces/{trace_id}/tags"): f"{RUNS}/write",
    ("POST", "/traces/delete-traces"): f"{RUNS}/delete",
    # MLflow 3 logged models belong to an experiment and are written like runs
    ("POST", "/logged-models"): f"{RUNS}/write",
    ("POST", "/logged-models/search"): f"{RUNS}/read",
    ("GET", "/logged-models/{model_id}"): f"{RUNS}/read",
    ("PATCH", "/logged-models/{model_id}"): f"{RUNS}/write",
    ("DELETE", "/logged-models/{model_id}"): f"{RUNS}/delete",
    ("POST", "/logged-models/{model_id}/params"): f"{RUNS}/write",
    ("PATCH", "/logged-models/{model_id}/tags"): f"{RUNS}/write",
    ("DELETE", "/logged-models/{model_id}/tags/{tag_key}"): f"{RUNS}/write",
    ("GET", "/logged-models/{model_id}/artifacts/directories"): f"{RUNS}/read",
    # registry webhooks: who may change the registry may be told of its changes
    ("POST", "/webhooks"): f"{MODELS}/write",
    ("GET", "/webhooks"): f"{MODELS}/read",
    ("GET", "/webhooks/{webhook_id}"): f"{MODELS}/read",
    ("PATCH", "/webhooks/{webhook_id}"): f"{MODELS}/write",
    ("DELETE", "/webhooks/{webhook_id}"): f"{MODELS}/write",
    ("POST", "/webhooks/{webhook_id}/test"): f"{MODELS}/write",
    ("POST", "/registered-models/create"): f"{MODELS}/write",
    ("GET", "/registered-models/get"): f"{MODELS}/read",
    ("POST", "/registered-models/rename"): f"{MODELS}/write",
    ("PATCH", "/registered-models/update"): f"{MODELS}/write",
    ("DELETE", "/registered-models/delete"): f"{MODELS}/delete",
    ("GET", "/registered-models/search"): f"{MODELS}/read",
    ("GET", "/registered-models/get-latest-versions"): f"{MODELS}/read",
    ("POST", "/registered-models/get-latest-versions"): f"{MODELS}/read",
    ("POST", "/registered-models/set-tag"): f"{MODELS}/write",
    ("DELETE", "/registered-models/delete-tag"): f"{MODELS}/write",
    ("POST", "/registered-models/alias"): f"{MODELS}/write",
    ("DELETE", "/registered-models/alias"): f"{MODELS}/write",
    ("GET", "/registered-models/alias"): f"{MODELS}/read",
    ("POST", "/model-versions/create"): f"{MODELS}/write",
    ("GET", "/model-versions/get"): f"{MODELS}/read",
    ("PATCH", "/model-versions/update"): f"{MODELS}/write",
    ("DELETE", "/model-versions/delete"): f"{MODELS}/delete",
    ("GET", "/model-versions/search"): f"{MODELS}/read",
    ("GET", "/model-versions/get-download-uri"): f"{MODELS}/read",
    ("POST", "/model-versions/transition-stage"): f"{MODELS}/write",
    ("POST", "/model-versions/set-tag"): f"{MODELS}/write",
    ("DELETE", "/model-versions/delete-tag"): f"{MODELS}/write",
}

STUDIO_COMPUTE_ACTIONS = {
    "start": f"{COMP}/start/action",
    "stop": f"{COMP}/stop/action",
    "restart": f"{COMP}/restart/action",
    "preempt": f"{COMP}/restart/action",
    "delete": f"{COMP}/delete",
}


def action_for(method: str, template: str, path_params: dict[str, str]) -> str | None:
    """The action a routed request needs, or None when the route is not declared."""
    action = ROUTE_ACTIONS.get((method, template))
    if action is None and method == "HEAD":
        action = ROUTE_ACTIONS.get(("GET", template))
    if action is not None and "{action}" in action:
        return STUDIO_COMPUTE_ACTIONS.get(path_params.get("action", ""), f"{COMP}/write")
    return action
