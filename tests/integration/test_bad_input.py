"""Bad input gets a 4xx and a JSON body naming the problem; the token is always required."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

MLFLOW = "/api/2.0/mlflow"


@pytest.fixture(scope="module")
def api(lapis_server: Any) -> Any:
    with lapis_server.client() as c:
        yield c


@pytest.fixture(scope="module")
def run_id(api: httpx.Client) -> str:
    exp = api.post(f"{MLFLOW}/experiments/create", json={"name": "bad-input"}).json()
    run = api.post(f"{MLFLOW}/runs/create", json={"experiment_id": exp["experiment_id"]}).json()
    return str(run["run"]["info"]["run_id"])


def _err(resp: httpx.Response, status: int, code: str, *fragments: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error_code"] == code, body
    for fragment in fragments:
        assert fragment in body["message"], body["message"]


def test_malformed_json(api: httpx.Client) -> None:
    r = api.post(
        f"{MLFLOW}/runs/log-metric",
        content=b'{"run_id": ',
        headers={"content-type": "application/json"},
    )
    _err(r, 400, "MALFORMED_REQUEST", "Malformed JSON")
    r = api.post(f"{MLFLOW}/runs/log-metric", content=b"[1, 2]")
    _err(r, 400, "MALFORMED_REQUEST", "JSON object")


def test_wrong_types_name_the_field(api: httpx.Client, run_id: str) -> None:
    r = api.post(
        f"{MLFLOW}/runs/log-metric",
        json={"run_id": run_id, "key": "m", "value": "abc", "timestamp": 1},
    )
    _err(r, 400, "INVALID_PARAMETER_VALUE", "'metric.value'", "abc")
    r = api.post(
        f"{MLFLOW}/runs/log-metric",
        json={"run_id": run_id, "key": "m", "value": 1, "timestamp": 1, "step": "x"},
    )
    _err(r, 400, "INVALID_PARAMETER_VALUE", "'step'")
    r = api.post(f"{MLFLOW}/runs/log-batch", json={"run_id": run_id, "metrics": "nope"})
    _err(r, 400, "INVALID_PARAMETER_VALUE", "'metrics'")
    r = api.post(f"{MLFLOW}/experiments/create", json={"name": 42})
    _err(r, 400, "INVALID_PARAMETER_VALUE", "'name'")
    r = api.post(f"{MLFLOW}/runs/log-metric", json={"key": "m", "value": 1})
    _err(r, 400, "INVALID_PARAMETER_VALUE", "'run_id'")
    r = api.post(
        f"/api/v1/runs/{run_id}/log",
        json={"metrics": {"key": ["a"], "value": ["x"], "step": [0], "timestamp": [0]}},
    )
    _err(r, 400, "INVALID_PARAMETER_VALUE", "metrics.value[0]")
    r = api.post("/api/v1/runs", json={"run_name": 5})
    _err(r, 400, "INVALID_PARAMETER_VALUE", "run_name")


def test_unknown_run_and_experiment(api: httpx.Client) -> None:
    _err(
        api.get(f"{MLFLOW}/runs/get", params={"run_id": "f" * 32}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "f" * 32,
    )
    _err(
        api.get(f"{MLFLOW}/experiments/get", params={"experiment_id": "98765"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "98765",
    )
    r = api.post(f"{MLFLOW}/runs/create", json={"experiment_id": "98765"})
    _err(r, 404, "RESOURCE_DOES_NOT_EXIST", "98765")
    r = api.post(
        f"{MLFLOW}/runs/log-metric",
        json={"run_id": "0" * 32, "key": "m", "value": 1, "timestamp": 1},
    )
    _err(r, 404, "RESOURCE_DOES_NOT_EXIST", "0" * 32)


def test_metric_on_finished_and_deleted_run(api: httpx.Client, run_id: str) -> None:
    exp = api.post(f"{MLFLOW}/experiments/create", json={"name": "bad-input-deleted"}).json()
    run = api.post(f"{MLFLOW}/runs/create", json={"experiment_id": exp["experiment_id"]}).json()
    rid = run["run"]["info"]["run_id"]
    assert api.post(f"{MLFLOW}/runs/update", json={"run_id": rid, "status": "FINISHED"}).is_success
    assert api.post(f"{MLFLOW}/runs/delete", json={"run_id": rid}).is_success
    r = api.post(
        f"{MLFLOW}/runs/log-metric", json={"run_id": rid, "key": "m", "value": 1, "timestamp": 1}
    )
    _err(r, 400, "INVALID_PARAMETER_VALUE", rid, "'active' state", "deleted")


def test_param_relogged_with_another_value(api: httpx.Client, run_id: str) -> None:
    ok = api.post(
        f"{MLFLOW}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.1"}
    )
    assert ok.is_success
    same = api.post(
        f"{MLFLOW}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.1"}
    )
    assert same.is_success
    r = api.post(
        f"{MLFLOW}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.2"}
    )
    _err(r, 400, "INVALID_PARAMETER_VALUE", "Changing param values is not allowed", "lr", "0.2")


def test_over_long_param_value(api: httpx.Client, run_id: str) -> None:
    r = api.post(
        f"{MLFLOW}/runs/log-parameter", json={"run_id": run_id, "key": "long", "value": "x" * 6001}
    )
    _err(r, 400, "INVALID_PARAMETER_VALUE", "long", "6001", "6000")


def _raw(server: Any, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, Any]]:
    """Send the path byte for byte: httpx would resolve the dot segments before sending."""
    import http.client
    import json
    from urllib.parse import urlsplit

    where = urlsplit(server.url)
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    conn.request(
        method, path, body=body or None, headers={"Authorization": f"Bearer {server.token}"}
    )
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data or b"{}")


@pytest.mark.parametrize("path", ["../../etc/passwd", "0/a/../../../b.txt", "%2Fetc%2Fpasswd"])
@pytest.mark.parametrize("method", ["PUT", "GET"])
def test_artifact_paths_escaping_the_root(lapis_server: Any, path: str, method: str) -> None:
    status, body = _raw(lapis_server, method, f"/api/2.0/mlflow-artifacts/artifacts/{path}", b"x")
    assert status == 400, body
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert ".." in body["message"] or "absolute" in body["message"]


def test_artifact_listing_outside_the_root(api: httpx.Client) -> None:
    listing = api.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": "../.."})
    _err(listing, 400, "INVALID_PARAMETER_VALUE", "..")
    absolute = api.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": "/etc"})
    _err(absolute, 400, "INVALID_PARAMETER_VALUE", "absolute")


def test_duplicate_experiment_name(api: httpx.Client) -> None:
    assert api.post(f"{MLFLOW}/experiments/create", json={"name": "twice"}).is_success
    r = api.post(f"{MLFLOW}/experiments/create", json={"name": "twice"})
    _err(r, 400, "RESOURCE_ALREADY_EXISTS", "twice")


def test_bad_filter_points_at_the_token(api: httpx.Client) -> None:
    r = api.post(
        f"{MLFLOW}/runs/search", json={"experiment_ids": ["0"], "filter": "metrics.a >> 1"}
    )
    _err(r, 400, "INVALID_PARAMETER_VALUE", "position")


@pytest.mark.parametrize(
    "path",
    [
        f"{MLFLOW}/experiments/search",
        "/api/v1/experiments",
        "/api/v1/whoami",
        "/openapi.json",
        "/api/2.0/mlflow-artifacts/artifacts",
    ],
)
def test_token_required(lapis_server: Any, path: str) -> None:
    missing = httpx.get(f"{lapis_server.url}{path}")
    _err(missing, 401, "UNAUTHENTICATED", "Bearer")
    wrong = httpx.get(f"{lapis_server.url}{path}", headers={"Authorization": "Bearer lapis_nope"})
    _err(wrong, 401, "UNAUTHENTICATED", "Invalid")
    assert httpx.get(f"{lapis_server.url}/healthz").status_code == 200
