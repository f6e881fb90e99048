"""Roles on every route, generated from the route table.

The expectations below are written from Azure's role descriptions, not computed
by Lapis' matcher, so a wrong wildcard or a mis-declared route shows up here:
every route and every built-in role is called through a real server, and a
refusal must be a 403 naming the action, an allowed call anything but that.
"""

from __future__ import annotations

import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lapis.auth.actions import ACTIONS, SELF
from lapis.errors import PermissionDenied
from lapis.server.permissions import MLFLOW_ACTIONS, OPEN, ROUTE_ACTIONS

pytestmark = pytest.mark.stores("sqlite", "postgres")

ADMIN_ONLY = {
    "workspaces/users/write",
    "workspaces/roles/write",
    "workspaces/roleAssignments/write",
    "workspaces/audit/read",
}

EXPECTED: dict[str, Callable[[str], bool]] = {
    "Owner": lambda a: True,
    "Contributor": lambda a: a not in ADMIN_ONLY,
    "Reader": lambda a: (
        a.endswith("/read") and a not in {"workspaces/users/read", "workspaces/audit/read"}
    ),
    "AzureML Data Scientist": lambda a: (
        a
        not in {"workspaces/computes/write", "workspaces/computes/delete", "workspaces/users/read"}
        and a not in ADMIN_ONLY
    ),
    "AzureML Compute Operator": lambda a: (
        a.startswith("workspaces/computes/") or a == "workspaces/read"
    ),
}


def _walk(routes: list[Any]) -> Iterator[Any]:
    for r in routes:
        if hasattr(r, "original_router"):
            yield from _walk(r.original_router.routes)
        else:
            yield r


def app_routes() -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves, MLflow's catch-all excluded."""
    from lapis.config import Settings
    from lapis.server.app import create_app
    from lapis.server.context import Workspace

    ws = Workspace.open(Settings(home=Path(tempfile.mkdtemp()) / "home"))
    try:
        app = create_app(ws)
        found = set()
        for route in _walk(app.router.routes):
            path = getattr(route, "path", "")
            if path == "/static" or "{rest:path}" in path:
                continue
            for method in getattr(route, "methods", None) or ():
                if method != "HEAD" or (("GET", path) not in ROUTE_ACTIONS):
                    found.add((method, path))
        return sorted(found)
    finally:
        ws.close()


def test_every_route_declares_an_action_and_no_entry_is_stale() -> None:
    routes = app_routes()
    missing = [r for r in routes if r not in ROUTE_ACTIONS and r not in OPEN]
    assert missing == [], f"routes without an action in lapis/server/permissions.py: {missing}"
    stale = [r for r in ROUTE_ACTIONS if r not in set(routes)]
    assert stale == [], f"permissions.py names routes that do not exist: {stale}"
    from lapis.server.routers.mlflow import (
        experiments,
        logged_models,
        registry,
        runs,
        traces,
        webhooks,
    )

    mlflow = {
        (m, p)
        for routes in (
            runs.ROUTES,
            experiments.ROUTES,
            logged_models.ROUTES,
            registry.ROUTES,
            traces.ROUTES,
            traces.V3_ROUTES,
            webhooks.ROUTES,
        )
        for m, p, _ in routes
    }
    assert mlflow == set(MLFLOW_ACTIONS), mlflow ^ set(MLFLOW_ACTIONS)
    for action in {*ROUTE_ACTIONS.values(), *MLFLOW_ACTIONS.values()}:
        assert action == SELF or action in ACTIONS or "{action}" in action, action


# --- the matrix -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(lapis_server: Any) -> dict[str, Any]:
    """A user and token per built-in role, and a run whose artifact root the routes use."""
    admin = lapis_server.client()
    tokens = {}
    for role in EXPECTED:
        name = "u-" + re.sub(r"\W", "", role.lower())[:20] + uuid.uuid4().hex[:4]
        r = admin.post("/api/v1/users", json={"name": name, "roles": [role]})
        assert r.status_code == 201, r.text
        t = admin.post("/api/v1/tokens", json={"name": "matrix", "user": name})
        tokens[role] = t.json()["token"]
    run = admin.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "0"}).json()["run"]
    root = run["info"]["artifact_uri"].split("mlflow-artifacts:/", 1)[1].lstrip("/")
    return {"admin": admin, "tokens": tokens, "run_id": run["info"]["run_id"], "root": root}


SKIP = {("POST", "/api/v1/tokens/rotate"), ("POST", "/signout")}  # would end the test's token


def _fill(path: str, world: dict[str, Any]) -> str:
    path = path.replace("{artifact_path:path}", f"{world['root']}/matrix.txt")
    path = path.replace("{run_id}", world["run_id"])
    return re.sub(r"\{[^}]+\}", "x1", path)


def _cases() -> list[tuple[str, str, str]]:
    from lapis.server.routers.mlflow.traces import V3_ROUTES

    v3 = {(m, p) for m, p, _ in V3_ROUTES}  # MLflow 3's trace calls live under /api/3.0
    cases = [(m, p, a) for (m, p), a in ROUTE_ACTIONS.items() if (m, p) not in SKIP]
    cases += [
        (m, ("/api/3.0/mlflow" if (m, p) in v3 else "/api/2.0/mlflow") + p, a)
        for (m, p), a in MLFLOW_ACTIONS.items()
    ]
    return sorted(cases)


def test_route_role_matrix(lapis_server: Any, world: dict[str, Any]) -> None:
    problems = []
    calls = 0
    for role, token in world["tokens"].items():
        with httpx.Client(
            base_url=lapis_server.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
            follow_redirects=False,
        ) as http:
            for method, template, action in _cases():
                if "{action}" in action:  # studio compute buttons: start/stop/restart/delete
                    action = "workspaces/computes/start/action"
                    template = template.replace("{action}", "start")
                path = _fill(template, world)
                body = {} if method in ("POST", "PUT", "PATCH") else None
                r = http.request(method, path, json=body)
                calls += 1
                allowed = action == SELF or EXPECTED[role](action)
                refused = r.status_code == 403 and (method == "HEAD" or action in r.text)
                if allowed and refused:
                    problems.append(f"{role} refused {method} {template} ({action})")
                if not allowed and not refused:
                    problems.append(
                        f"{role} not refused {method} {template} ({action}): {r.status_code}"
                    )
                if r.status_code >= 500:
                    problems.append(f"{role} {method} {template}: {r.status_code} {r.text[:80]}")
    assert calls > 5 * 200
    assert problems == [], "\n".join(problems)


# --- tokens, users, roles -------------------------------------------------------------------------
def _client(server: Any, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})


def test_disabled_user_and_revoked_or_expired_tokens_stop_at_once(
    lapis_server: Any, world: dict[str, Any]
) -> None:
    admin = world["admin"]
    name = f"dis-{uuid.uuid4().hex[:6]}"
    admin.post("/api/v1/users", json={"name": name, "roles": ["Reader"]})
    token = admin.post("/api/v1/tokens", json={"name": "t", "user": name}).json()["token"]
    with _client(lapis_server, token) as me:
        assert me.get("/api/v1/experiments").status_code == 200
        assert admin.post(f"/api/v1/users/{name}/disable").status_code == 200
        assert me.get("/api/v1/experiments").status_code == 401  # no cache window
        assert admin.post(f"/api/v1/users/{name}/enable").status_code == 200
        assert me.get("/api/v1/experiments").status_code == 200
    short = admin.post(
        "/api/v1/tokens", json={"name": "short", "user": name, "expires_in_seconds": 1}
    ).json()
    with _client(lapis_server, short["token"]) as me:
        assert me.get("/api/v1/whoami").status_code == 200
        time.sleep(1.2)
        body = me.get("/api/v1/whoami")
        assert body.status_code == 401 and "expired" in body.json()["message"]
    own = admin.post("/api/v1/tokens", json={"name": "mine", "user": name}).json()
    with _client(lapis_server, own["token"]) as me:
        listed = me.get("/api/v1/tokens").json()["tokens"]
        assert own["token_id"] in {t["token_id"] for t in listed}
        assert all("token" not in t for t in listed)  # the secret is never listed
        # a Reader cannot see or revoke someone else's tokens
        assert me.get("/api/v1/tokens", params={"user": "admin"}).status_code == 403
        rotated = me.post("/api/v1/tokens/rotate").json()
    with _client(lapis_server, own["token"]) as old:
        assert old.get("/api/v1/whoami").status_code == 401
    with _client(lapis_server, rotated["token"]) as new:
        assert new.get("/api/v1/whoami").json()["name"] == name
        assert new.post(f"/api/v1/tokens/{rotated['token_id']}/revoke").status_code == 200
        assert new.get("/api/v1/whoami").status_code == 401


def test_the_last_owner_stays(lapis_server: Any, world: dict[str, Any]) -> None:
    admin = world["admin"]
    owners = [u for u in admin.get("/api/v1/users").json()["users"] if "Owner" in u["roles"]]
    if len(owners) == 1:
        r = admin.request(
            "DELETE", "/api/v1/roleAssignments", params={"user": owners[0]["name"], "role": "Owner"}
        )
        assert r.status_code == 400 and "last Owner" in r.json()["message"]
    assert admin.post("/api/v1/users/admin/disable").status_code == 400  # not yourself


ROLE_YAML = """\
name: Experimenter-{uid}
description: reads everything, submits jobs
actions:
  - workspaces/*/read
  - workspaces/jobs/write
not_actions:
  - workspaces/models/read
"""


def test_custom_role_from_yaml(lapis_server: Any, world: dict[str, Any], tmp_path: Path) -> None:
    from jobkit import lapis_cli

    uid = uuid.uuid4().hex[:6]
    role_file = tmp_path / "role.yml"
    role_file.write_text(ROLE_YAML.format(uid=uid))
    done = lapis_cli(lapis_server, "role", "create", "-f", str(role_file))
    assert done.returncode == 0, done.stderr
    name = f"exp-{uid}"
    done = lapis_cli(lapis_server, "user", "create", name, "--role", f"Experimenter-{uid}")
    assert done.returncode == 0, done.stderr
    token = re.search(r"lapis_\S+", done.stdout).group(0)  # type: ignore[union-attr]
    with _client(lapis_server, token) as me:
        assert me.get("/api/v1/jobs").status_code == 200
        assert me.get("/api/v1/models").status_code == 403  # not_actions subtracts
        denied = me.post("/api/v1/endpoints", json={"name": "nope"})
        assert denied.status_code == 403
        assert "workspaces/onlineEndpoints/write" in denied.json()["message"]
    shown = lapis_cli(lapis_server, "role", "show", f"Experimenter-{uid}")
    assert "workspaces/jobs/write" in shown.stdout and name in shown.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text("name: Typo\nactions:\n  - workspaces/jobs/rite\n")
    done = lapis_cli(lapis_server, "role", "create", "-f", str(bad))
    assert done.returncode == 1
    assert "bad.yml:3" in done.stderr and "workspaces/jobs/write" in done.stderr  # did you mean
    azure = tmp_path / "azure.json"
    azure.write_text(
        '{"Name": "Az-' + uid + '", "IsCustom": true, "Description": "from Azure", '
        '"Actions": ["Microsoft.MachineLearningServices/workspaces/computes/*"], '
        '"NotActions": [], "AssignableScopes": ["/subscriptions/x"]}'
    )
    done = lapis_cli(lapis_server, "role", "create", "-f", str(azure))
    assert done.returncode == 0, done.stderr


def test_compute_instance_is_used_by_its_user_only(
    lapis_server: Any, world: dict[str, Any], tmp_path: Path
) -> None:
    from jobkit import write_job

    from lapis.sdk import jobs as sdk_jobs
    from lapis.sdk.connection import LapisHTTP

    admin = world["admin"]
    name = f"cix{uuid.uuid4().hex[:6]}"
    r = admin.post(
        "/api/v1/computes",
        json={"name": name, "type": "computeinstance", "size": "Standard_DS1_v2"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["owner"] == "admin"
    scientist = world["tokens"]["AzureML Data Scientist"]
    job = write_job(tmp_path, f"command: echo hi\ncompute: azureml:{name}\nenvironment: system\n")
    with LapisHTTP(lapis_server.url, scientist) as http:
        with pytest.raises(Exception) as refused:
            sdk_jobs.submit_file(http, job)
        assert "belongs to admin" in str(refused.value)
        # a Data Scientist may still stop and start someone's instance (an action) ...
        http.post(f"/api/v1/computes/{name}/stop")
        # ... but not delete it (a compute write/delete)
        with pytest.raises(PermissionDenied, match="workspaces/computes/delete"):
            http.request("DELETE", f"/api/v1/computes/{name}")
    me = httpx.get(
        f"{lapis_server.url}/api/v1/whoami", headers={"Authorization": f"Bearer {scientist}"}
    ).json()["name"]
    mine = f"ciy{uuid.uuid4().hex[:6]}"
    r = admin.post(
        "/api/v1/computes",
        json={
            "name": mine,
            "type": "computeinstance",
            "size": "Standard_DS1_v2",
            "assigned_user": me,
        },
    )
    assert r.status_code == 201 and r.json()["owner"] == me, r.text
    job2 = write_job(
        tmp_path / "2", f"command: echo hi\ncompute: azureml:{mine}\nenvironment: system\n"
    )
    with LapisHTTP(lapis_server.url, scientist) as http:
        submitted = sdk_jobs.submit_file(http, job2)
    assert submitted["compute"] == mine
    with LapisHTTP(lapis_server.url, lapis_server.token) as http:
        with pytest.raises(Exception) as refused:  # the Owner is not the instance's user
            sdk_jobs.submit_file(http, job2)
        assert f"belongs to {me}" in str(refused.value)
    for c in (name, mine):
        admin.delete(f"/api/v1/computes/{c}")


def test_audit_log_records_writes_and_refusals(lapis_server: Any, world: dict[str, Any]) -> None:
    from jobkit import lapis_cli

    reader = world["tokens"]["Reader"]
    with _client(lapis_server, reader) as me:
        who = me.get("/api/v1/whoami").json()["name"]
        assert me.post("/api/v1/computes", json={"name": "audited"}).status_code == 403
    entries = world["admin"].get("/api/v1/audit", params={"user": who}).json()["entries"]
    hit = [e for e in entries if e["path"] == "/api/v1/computes"]
    assert hit and hit[0]["status"] == 403 and hit[0]["allowed"] is False
    assert hit[0]["action"] == "workspaces/computes/write" and hit[0]["client"] == "127.0.0.1"
    with _client(lapis_server, reader) as me:
        assert me.get("/api/v1/audit").status_code == 403  # Owners only
    done = lapis_cli(lapis_server, "audit", "list", "--user", who, "--since", "1h")
    assert done.returncode == 0 and "workspaces/computes/write" in done.stdout
    # there is no route that changes the log
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        r = world["admin"].request(method, "/api/v1/audit")
        assert r.status_code in (404, 405), (method, r.status_code)


REACH = """\
import json, os
import httpx

url, token = os.environ["LAPIS_URL"], os.environ["LAPIS_TOKEN"]
run, exp = os.environ["MLFLOW_RUN_ID"], os.environ["MLFLOW_EXPERIMENT_ID"]
other, other_root = os.environ["OTHER_RUN"], os.environ["OTHER_ROOT"]
h = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
M = "/api/2.0/mlflow"
ART = "/api/2.0/mlflow-artifacts/artifacts"


def metric(run_id):
    return {"run_id": run_id, "key": "m", "value": 1, "timestamp": 1}


calls = {
    "log own run": ("POST", f"{M}/runs/log-metric", metric(run)),
    "read own run": ("GET", f"{M}/runs/get?run_id={run}", None),
    "log other run": ("POST", f"{M}/runs/log-metric", metric(other)),
    "read other run": ("GET", f"{M}/runs/get?run_id={other}", None),
    "search experiments": ("POST", f"{M}/experiments/search", {}),
    "list jobs": ("GET", "/api/v1/jobs", None),
    "create compute": ("POST", "/api/v1/computes", {"name": "fromjob"}),
    "create token": ("POST", "/api/v1/tokens", {"name": "escape"}),
    "list users": ("GET", "/api/v1/users", None),
    "register model": ("POST", f"{M}/registered-models/create", {"name": "job-" + run[:6]}),
    "other run artifact": ("PUT", f"{ART}/{other_root}/x.txt", None),
    "read other artifact": ("GET", f"{ART}?path={other_root}", None),
}
out = {}
for label, (method, path, body) in calls.items():
    out[label] = h.request(method, path, json=body).status_code
made = h.post(f"{M}/runs/create", json={"experiment_id": exp}).json()
nested = made["run"]["info"]["run_id"]
out["log nested run"] = h.post(f"{M}/runs/log-metric", json=metric(nested)).status_code
root = made["run"]["info"]["artifact_uri"].split("mlflow-artifacts:/", 1)[1].lstrip("/")
out["nested run artifact"] = h.put(f"{ART}/{root}/ok.txt", content=b"ok").status_code
out["other experiment run"] = h.post(f"{M}/runs/create", json={"experiment_id": "0"}).status_code
print("REACH " + json.dumps(out))
"""


def test_a_job_token_reaches_only_its_own_run(
    lapis_server: Any, world: dict[str, Any], tmp_path: Path
) -> None:
    import json

    from jobkit import log_text, submit, wait, write_job

    admin = world["admin"]
    exp = admin.post(
        "/api/2.0/mlflow/experiments/create", json={"name": f"reach-{uuid.uuid4().hex[:6]}"}
    )
    assert exp.status_code == 200
    job_file = write_job(
        tmp_path,
        f"""\
        command: python reach.py
        code: .
        environment: system
        experiment_name: reach-{uuid.uuid4().hex[:6]}
        environment_variables:
          OTHER_RUN: {world["run_id"]}
          OTHER_ROOT: {world["root"]}
        """,
        files={"reach.py": REACH},
    )
    job = wait(lapis_server, submit(lapis_server, job_file)["name"], timeout=120)
    log = log_text(lapis_server, job["name"])
    assert job["status"] == "Completed", log
    seen = json.loads(log.split("REACH ", 1)[1].splitlines()[0])
    allowed = {
        "log own run",
        "read own run",
        "register model",
        "log nested run",
        "nested run artifact",
    }
    for label, status in seen.items():
        if label in allowed:
            assert status == 200, (label, status, log)
        else:
            assert status == 403, (label, status, log)
    # the job's token died with the job
    token_list = admin.get("/api/v1/tokens", params={"user": "*"}).json()["tokens"]
    assert not [t for t in token_list if t.get("job") == job["name"]]


MATRIX_JOB = """\
import json, os
import httpx

h = httpx.Client(base_url=os.environ["LAPIS_URL"], timeout=60,
                 headers={"Authorization": "Bearer " + os.environ["LAPIS_TOKEN"]})
results = []
for method, path in json.load(open("routes.json")):
    body = {} if method in ("POST", "PUT", "PATCH") else None
    r = h.request(method, path, json=body)
    results.append([r.status_code, r.text[:300]])
print("MATRIX " + json.dumps(results))
"""


def test_job_token_matrix(lapis_server: Any, world: dict[str, Any], tmp_path: Path) -> None:
    """Every route called with a job's token: only the job's actions pass the role check,
    and those that name someone else's run or experiment are refused by its reach."""
    import json

    from jobkit import log_text, submit, wait, write_job

    from lapis.auth.service import JOB_ACTIONS

    # the API surface (studio pages go through the same check, answered as HTML)
    cases = [c for c in _cases() if c[1].startswith(("/api/", "/ajax-api/", "/metrics"))]
    calls = []
    for method, template, action in cases:
        if "{action}" in action:
            action = "workspaces/computes/start/action"
            template = template.replace("{action}", "start")
        calls.append((method, _fill(template, world), action, template))
    folder = tmp_path / "matrix"
    folder.mkdir()
    (folder / "routes.json").write_text(json.dumps([[m, p] for m, p, _, _ in calls]))
    job_file = write_job(
        folder,
        "command: python matrix.py\ncode: .\nenvironment: system\n",
        files={"matrix.py": MATRIX_JOB},
    )
    job = wait(lapis_server, submit(lapis_server, job_file)["name"], timeout=300)
    log = log_text(lapis_server, job["name"])
    assert job["status"] == "Completed", log[-3000:]
    results = json.loads(log.split("MATRIX ", 1)[1].splitlines()[0])
    problems = []
    for (method, _path, action, template), (status, text) in zip(calls, results, strict=True):
        if status >= 500:
            problems.append(f"{method} {template}: {status} {text[:80]}")
        elif action == SELF:
            continue
        elif action in JOB_ACTIONS:
            if status == 403 and "reaches only its own run" not in text:
                problems.append(f"job refused {method} {template} ({action}): {text[:120]}")
        elif not (status == 403 and (method == "HEAD" or action in text)):
            problems.append(f"job not refused {method} {template} ({action}): {status}")
    assert problems == [], "\n".join(problems)
