"""Action strings: what a request does, in Azure's shape.

Every route needs exactly one action (``lapis/server/permissions.py`` says
which); a role allows or denies actions by pattern. Names follow Azure Machine
Learning's ``Microsoft.MachineLearningServices/workspaces/...`` operations with
the provider prefix dropped (a custom role written for Azure may keep it: it is
stripped when the role is read). ``*`` matches any run of characters, ``/``
included, and ``a/*/b`` also matches ``a/b`` — so ``workspaces/computes/*/write``
covers creating a compute (``workspaces/computes/write``) as it does on Azure.
Matching ignores case, as Azure's does.
"""

from __future__ import annotations

import functools
import re

PROVIDER = "microsoft.machinelearningservices/"

# The catalog: every action a route can need, with what it lets one do. Custom roles
# are checked against it so a typo is caught when the role is created.
ACTIONS: dict[str, str] = {
    "workspaces/read": "see the workspace: server info, who am I",
    "workspaces/experiments/read": "list and read experiments",
    "workspaces/experiments/write": "create, rename and tag experiments",
    "workspaces/experiments/delete": "delete and restore experiments",
    "workspaces/experiments/runs/read": "read runs: params, metrics, tags, artifacts",
    "workspaces/experiments/runs/write": "create runs and log to them, upload artifacts",
    "workspaces/experiments/runs/delete": "delete and restore runs, delete artifacts",
    "workspaces/jobs/read": "list jobs, read their logs and outputs",
    "workspaces/jobs/write": "submit, re-submit and cancel jobs, upload code snapshots",
    "workspaces/computes/read": "list computes and read their state",
    "workspaces/computes/write": "create and update computes",
    "workspaces/computes/delete": "delete computes",
    "workspaces/computes/start/action": "start a compute instance",
    "workspaces/computes/stop/action": "stop a compute instance",
    "workspaces/computes/restart/action": "restart a compute instance",
    "workspaces/computes/applicationaccess/action": "open one's instance's JupyterLab and SSH",
    "workspaces/datastores/read": "list and read datastores (never their credentials)",
    "workspaces/datastores/write": "create and update datastores",
    "workspaces/datastores/delete": "delete datastores (their data stays)",
    "workspaces/datastores/listsecrets/action": "read a datastore's credentials",
    "workspaces/data/read": "list and read data assets",
    "workspaces/notebooks/storage/read": "browse and download the file share's notebooks",
    "workspaces/notebooks/storage/write": "upload, create and rename files in one's folder",
    "workspaces/notebooks/storage/delete": "delete files in one's own file share folder",
    "workspaces/notebooks/storage/manage/action": "change files in other users' folders",
    "workspaces/components/read": "list and read components",
    "workspaces/components/write": "register, archive and restore components",
    "workspaces/schedules/read": "list and read job schedules and the jobs they made",
    "workspaces/schedules/write": "create, update, enable and disable job schedules",
    "workspaces/schedules/delete": "delete job schedules",
    "workspaces/data/write": "register, archive and restore data assets, upload data",
    "workspaces/environments/read": "list and read environments and their builds",
    "workspaces/environments/write": "register, build and archive environments",
    "workspaces/models/read": "list, read and download models",
    "workspaces/models/write": "register, update, archive and restore models",
    "workspaces/models/delete": "delete model versions and registered models",
    "workspaces/onlineEndpoints/read": "list and read online endpoints and telemetry",
    "workspaces/onlineEndpoints/write": "create and update online endpoints, set traffic",
    "workspaces/onlineEndpoints/delete": "delete online endpoints",
    "workspaces/onlineEndpoints/listkeys/action": "read an online endpoint's keys",
    "workspaces/onlineEndpoints/regenerateKeys/action": "regenerate an endpoint's keys",
    "workspaces/onlineEndpoints/token/action": "get a scoring token of an aml_token endpoint",
    "workspaces/onlineEndpoints/score/action": "call an endpoint from the studio's test form",
    "workspaces/onlineEndpoints/deployments/read": "list deployments, read their logs",
    "workspaces/onlineEndpoints/deployments/write": "create and update deployments",
    "workspaces/onlineEndpoints/deployments/delete": "delete deployments",
    "workspaces/batchEndpoints/read": "list and read batch endpoints",
    "workspaces/batchEndpoints/write": "create, update and invoke batch endpoints",
    "workspaces/batchEndpoints/delete": "delete batch endpoints",
    "workspaces/batchEndpoints/deployments/read": "list and read batch deployments",
    "workspaces/batchEndpoints/deployments/write": "create and update batch deployments",
    "workspaces/batchEndpoints/deployments/delete": "delete batch deployments",
    "workspaces/metrics/read": "read the Prometheus metrics",
    "workspaces/users/read": "list users and their tokens",
    "workspaces/users/write": "create and disable users, issue and revoke others' tokens",
    "workspaces/roles/read": "list role definitions and assignments",
    "workspaces/roles/write": "create and delete custom roles",
    "workspaces/roleAssignments/write": "assign and unassign roles",
    "workspaces/audit/read": "read the audit log",
}

# What needs no role at all, only a valid token: a person's own account.
SELF = "self"


@functools.lru_cache(maxsize=4096)
def _pattern(pattern: str) -> re.Pattern[str]:
    text = normalize(pattern)
    parts = [re.escape(p) for p in text.split("*")]
    regex = ".*".join(parts)
    regex = regex.replace("/.*/", "(?:/.*)?/")  # a/*/b also matches a/b
    return re.compile(f"^{regex}$")


def normalize(action: str) -> str:
    """Lower case, without Azure's provider prefix."""
    text = action.strip().lower()
    return text[len(PROVIDER) :] if text.startswith(PROVIDER) else text


def matches(pattern: str, action: str) -> bool:
    return bool(_pattern(pattern).match(normalize(action)))


def known(pattern: str) -> bool:
    """Whether a role's pattern matches at least one action in the catalog."""
    return any(matches(pattern, a) for a in ACTIONS)
