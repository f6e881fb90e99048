"""The fast lane answers the hot tracking writes exactly as the full stack would.

Each case is sent twice where it can be: through the lane (``POST`` with a
``Content-Length``) and through the stack (the same request chunked, which the
lane leaves alone), and the answers — status, body, security headers, audit
row — must match. The refusals the lane hands to the stack (no token, a role
without the action, a job reaching beyond its run, malformed and oversized
bodies) are checked for their answer and their audit row.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jobkit import run_coroutine

from lapis.entities.auth import JobScope

pytestmark = pytest.mark.stores("sqlite", "postgres")

LOG_METRIC = "/api/2.0/mlflow/runs/log-metric"
HOT = (LOG_METRIC, "/api/2.0/mlflow/runs/log-batch", "/ajax-api/2.0/mlflow/runs/log-metric")


def _run(c: httpx.Client) -> tuple[str, str]:
    exp = c.post(
        "/api/2.0/mlflow/experiments/create", json={"name": f"lane-{uuid.uuid4().hex[:8]}"}
    ).json()["experiment_id"]
    run = c.post("/api/2.0/mlflow/runs/create", json={"experiment_id": exp}).json()["run"]
    return exp, run["info"]["run_id"]


def _chunked(body: bytes) -> Iterator[bytes]:
    yield body  # a generator body: httpx sends it chunked, without Content-Length


def _post(c: httpx.Client, path: str, body: bytes, chunked: bool) -> httpx.Response:
    if chunked:
        return c.post(path, content=_chunked(body), headers={"content-type": "application/json"})
    return c.post(path, content=body, headers={"content-type": "application/json"})


def _rows(ws: Any, path: str, status: int) -> list[dict[str, Any]]:
    return [r for r in ws.audit.query(limit=500) if r["path"] == path and r["status"] == status]


def _audit(ws: Any, path: str, status: int, before: int = 0) -> dict[str, Any]:
    """The newest audit row of ``path`` with ``status``, once there are more than ``before``."""
    for _ in range(50):
        rows = _rows(ws, path, status)
        if len(rows) > before:
            return rows[0]
        time.sleep(0.05)
    raise AssertionError(f"no new audit row for {path} with status {status}")


@pytest.fixture
def client(inprocess_server: Any) -> Iterator[httpx.Client]:
    with inprocess_server.client() as c:
        yield c


def test_a_logged_metric_is_stored_answered_and_audited_on_both_paths(
    inprocess_server: Any, client: httpx.Client
) -> None:
    ws = inprocess_server.ws
    _, run_id = _run(client)
    for step, chunked in ((0, False), (1, True)):
        before = len(_rows(ws, LOG_METRIC, 200))
        body = (
            f'{{"run_id": "{run_id}", "key": "loss", "value": {step + 0.5}, '
            f'"timestamp": 1700000000000, "step": {step}}}'
        ).encode()
        r = _post(client, LOG_METRIC, body, chunked)
        assert r.status_code == 200 and r.json() == {}
        assert r.headers["content-type"] == "application/json"
        assert r.headers["x-content-type-options"] == "nosniff"
        row = _audit(ws, LOG_METRIC, 200, before)
        assert row["action"] == "workspaces/experiments/runs/write" and row["user_name"] == "admin"
        assert row["allowed"] and row["method"] == "POST"
    history, _ = ws.tracking.metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 1.5)]
    batch = {"run_id": run_id, "metrics": [{"key": "acc", "value": 0.9, "timestamp": 1, "step": 0}]}
    assert client.post(HOT[1], json=batch).json() == {}
    ajax = {**batch["metrics"][0], "run_id": run_id, "step": 1, "value": 0.95}
    assert client.post(HOT[2], json=ajax).json() == {}
    assert [m.value for m in ws.tracking.metric_history(run_id, "acc")[0]] == [0.9, 0.95]


def test_errors_match_the_stacks_answer(inprocess_server: Any, client: httpx.Client) -> None:
    missing = (
        b'{"run_id": "0123456789abcdef0123456789abcdef", "key": "m", "value": 1, "timestamp": 1}'
    )
    lane, stack = (_post(client, LOG_METRIC, missing, chunked) for chunked in (False, True))
    assert lane.status_code == stack.status_code == 404
    assert lane.json() == stack.json()
    assert lane.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert lane.headers["x-content-type-options"] == "nosniff"
    _, run_id = _run(client)
    no_key = f'{{"run_id": "{run_id}", "value": 1, "timestamp": 1}}'.encode()
    lane, stack = (_post(client, LOG_METRIC, no_key, chunked) for chunked in (False, True))
    assert lane.status_code == stack.status_code == 400 and lane.json() == stack.json()
    assert "key" in lane.json()["message"]
    for bad in (b"{not json", b"[1, 2]"):
        r = _post(client, LOG_METRIC, bad, False)
        assert r.status_code == 400 and r.json()["error_code"] in (
            "MALFORMED_REQUEST",
            "INVALID_PARAMETER_VALUE",
        )
    assert len(_rows(inprocess_server.ws, LOG_METRIC, 404)) >= 2  # the lane's and the stack's


def test_refusals_are_answered_and_audited_by_the_stack(
    inprocess_server: Any, client: httpx.Client
) -> None:
    ws = inprocess_server.ws
    exp, run_id = _run(client)
    body = {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1, "step": 0}
    before = len(_rows(ws, LOG_METRIC, 401))
    anonymous = httpx.post(inprocess_server.url + LOG_METRIC, json=body)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    _audit(ws, LOG_METRIC, 401, before)

    admin = ws.auth.authenticate(f"Bearer {inprocess_server.token}")
    name = f"reader{uuid.uuid4().hex[:6]}"
    user = ws.auth.create_user(admin, name, ["Reader"])
    token = ws.auth.issue(user.user_id, name, "t").token
    before = len(_rows(ws, LOG_METRIC, 403))
    refused = httpx.post(
        inprocess_server.url + LOG_METRIC, json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert refused.status_code == 403
    assert "workspaces/experiments/runs/write" in refused.json()["message"]
    row = _audit(ws, LOG_METRIC, 403, before)
    assert row["user_name"] == name and not row["allowed"]

    # a job's token reaches its own run only, checked on the lane as on the stack
    _, other_run = _run(client)
    job_token = ws.auth.issue_job_token(admin.user_id, JobScope("lane-job", run_id, exp))
    headers = {"Authorization": f"Bearer {job_token}"}
    before = len(_rows(ws, LOG_METRIC, 200))
    own = httpx.post(inprocess_server.url + LOG_METRIC, json=body, headers=headers)
    assert own.status_code == 200
    beyond = httpx.post(
        inprocess_server.url + LOG_METRIC, json={**body, "run_id": other_run}, headers=headers
    )
    assert beyond.status_code == 403
    assert [m.value for m in ws.tracking.metric_history(other_run, "m")[0]] == []
    assert _audit(ws, LOG_METRIC, 200, before)["job"] == "lane-job"


def test_an_oversized_body_gets_the_guards_413(inprocess_server: Any) -> None:
    limit = inprocess_server.ws.settings.max_body_bytes
    r = httpx.post(
        inprocess_server.url + LOG_METRIC,
        content=b" " * (limit + 1),
        headers={"Authorization": f"Bearer {inprocess_server.token}"},
        timeout=60,
    )
    assert r.status_code == 413 and r.json()["error_code"] == "REQUEST_TOO_LARGE"


def test_the_lane_answers_the_happy_path_and_hands_the_rest_on(inprocess_server: Any) -> None:
    """The lane in front of a stack that only counts what reaches it."""
    from lapis.server.app import create_app

    lane = create_app(inprocess_server.ws).lane
    assert lane is not None
    reached: list[str] = []

    async def stack(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()  # the body the lane read, handed over
        reached.append(f"{scope['path']} {len(message.get('body', b''))}")
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    lane.app = stack
    with inprocess_server.client() as c:
        _, run_id = _run(c)
    body = {"run_id": run_id, "key": "m", "value": 2.0, "timestamp": 5, "step": 0}
    auth = {"Authorization": f"Bearer {inprocess_server.token}"}

    async def go() -> list[int]:
        transport = httpx.ASGITransport(app=lane)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return [
                (await c.post(LOG_METRIC, json=body, headers=auth)).status_code,
                (await c.post(LOG_METRIC, json=body)).status_code,  # no token
                (await c.post(LOG_METRIC + "?x=1", json=body, headers=auth)).status_code,
                (await c.post("/api/2.0/mlflow/runs/update", json=body, headers=auth)).status_code,
                (await c.get(LOG_METRIC, headers=auth)).status_code,
            ]

    assert run_coroutine(go()) == [200, 418, 418, 418, 418]
    size = len(httpx.Request("POST", "http://t", json=body).content)
    assert reached == [  # each with its whole body: read by the lane and replayed, or untouched
        f"{LOG_METRIC} {size}",
        f"{LOG_METRIC} {size}",
        f"/api/2.0/mlflow/runs/update {size}",
        f"{LOG_METRIC} 0",
    ]
    history, _ = inprocess_server.ws.tracking.metric_history(run_id, "m")
    assert [m.value for m in history] == [2.0]
