"""Bad input gets a 4xx and a JSON body naming the problem; the token is always required."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.stores("sqlite", "postgres")

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
    r = api.post("/api/v1/runs", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] in ("MALFORMED_REQUEST", "INVALID_PARAMETER_VALUE")
    assert r.json()["message"]


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
    r = api.post(f"{MLFLOW}/runs/log-metric", json={"key": "m", "value": 1, "timestamp": 1})
    _err(r, 400, "INVALID_PARAMETER_VALUE", "'run_id'")
    r = api.post(
        f"/api/v1/runs/{run_id}/log",
        json={"metrics": {"key": ["a"], "value": ["x"], "step": [0], "timestamp": [0]}},
    )
    _err(r, 400, "INVALID_PARAMETER_VALUE", "metrics.value[0]")
    r = api.post("/api/v1/runs", json={"run_name": 5})
    _err(r, 400, "INVALID_PARAMETER_VALUE", "run_name")
    r = api.post(
        f"/api/v1/runs/{run_id}/log",
        json={"metrics": {"key": ["a", "b"], "value": [1.0], "step": [0], "timestamp": [0]}},
    )
    _err(r, 400, "INVALID_PARAMETER_VALUE", "length")
    r = api.post(
        f"{MLFLOW}/runs/log-batch",
        json={"run_id": run_id, "metrics": [{"key": "m", "value": 1, "timestamp": "soon"}]},
    )
    _err(r, 400, "INVALID_PARAMETER_VALUE", "timestamp", "soon")
    r = api.post(f"{MLFLOW}/runs/update", json={"run_id": run_id, "status": "BOGUS"})
    _err(r, 400, "INVALID_PARAMETER_VALUE", "BOGUS")
    r = api.post(
        f"{MLFLOW}/runs/log-metric",
        json={"run_id": run_id, "key": "../escape", "value": 1, "timestamp": 1},
    )
    _err(r, 400, "INVALID_PARAMETER_VALUE", "../escape")


def test_missing_required_timestamp(api: httpx.Client, run_id: str) -> None:
    """MLflow's LogMetric requires a timestamp; its server answers 400 naming the field."""
    r = api.post(f"{MLFLOW}/runs/log-metric", json={"run_id": run_id, "key": "m", "value": 1})
    _err(r, 400, "INVALID_PARAMETER_VALUE", "'timestamp'")


def test_search_arguments_out_of_range(api: httpx.Client, run_id: str) -> None:
    exp_id = api.get(f"{MLFLOW}/runs/get", params={"run_id": run_id}).json()["run"]["info"][
        "experiment_id"
    ]
    for bad in (0, -1, 50001):
        r = api.post(f"{MLFLOW}/runs/search", json={"experiment_ids": [exp_id], "max_results": bad})
        _err(r, 400, "INVALID_PARAMETER_VALUE", "max_results", str(bad))
    r = api.post(f"{MLFLOW}/runs/search", json={"experiment_ids": [exp_id], "page_token": "zzz"})
    _err(r, 400, "INVALID_PARAMETER_VALUE", "zzz")
    r = api.post(f"{MLFLOW}/experiments/search", json={"page_token": "zzz"})
    _err(r, 400, "INVALID_PARAMETER_VALUE", "zzz")
    r = api.post(
        f"{MLFLOW}/runs/search",
        json={"experiment_ids": [exp_id], "order_by": ["metrics.acc SIDEWAYS"]},
    )
    _err(r, 400, "INVALID_PARAMETER_VALUE", "SIDEWAYS")
    r = api.get("/api/v1/runs", params={"filter": "params.lr == == 1"})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", r.text


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
    r = api.post(f"{MLFLOW}/runs/log-batch", json={"run_id": "e" * 32, "params": []})
    _err(r, 404, "RESOURCE_DOES_NOT_EXIST", "e" * 32)
    r = api.get(f"{MLFLOW}/experiments/get-by-name", params={"experiment_name": "no-such-exp"})
    _err(r, 404, "RESOURCE_DOES_NOT_EXIST", "no-such-exp")
    _err(api.get(f"/api/v1/runs/{'d' * 32}"), 404, "RESOURCE_DOES_NOT_EXIST", "d" * 32)
    _err(api.get("/api/v1/experiments/98765"), 404, "RESOURCE_DOES_NOT_EXIST", "98765")
    r = api.post("/api/v1/runs", json={"experiment_id": "98765"})
    _err(r, 404, "RESOURCE_DOES_NOT_EXIST", "98765")
    r = api.get(f"{MLFLOW}/registered-models/get", params={"name": "no-such-model"})
    _err(r, 404, "RESOURCE_DOES_NOT_EXIST", "no-such-model")


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
    r = api.post(
        f"{MLFLOW}/runs/log-batch",
        json={"run_id": run_id, "params": [{"key": "lr", "value": "0.3"}]},
    )
    _err(r, 400, "INVALID_PARAMETER_VALUE", "lr", "0.3")
    r = api.post(
        f"{MLFLOW}/runs/log-batch",
        json={
            "run_id": run_id,
            "params": [{"key": "dup", "value": "1"}, {"key": "dup", "value": "2"}],
        },
    )
    _err(r, 400, "INVALID_PARAMETER_VALUE", "dup")
    params = api.get(f"{MLFLOW}/runs/get", params={"run_id": run_id}).json()["run"]["data"]
    stored = {p["key"]: p["value"] for p in params.get("params", [])}
    assert stored.get("lr") == "0.1" and "dup" not in stored


def test_over_long_values_are_truncated_as_mlflow_does(api: httpx.Client, run_id: str) -> None:
    """MLflow's server cuts a param over 6,000 and a tag over 8,000 characters to the limit
    (MLFLOW_TRUNCATE_LONG_VALUES, on by default), so the script's call goes on."""
    r = api.post(
        f"{MLFLOW}/runs/log-parameter", json={"run_id": run_id, "key": "long", "value": "x" * 6001}
    )
    assert r.status_code == 200, r.text
    r = api.post(
        f"{MLFLOW}/runs/log-batch",
        json={
            "run_id": run_id,
            "params": [{"key": "long2", "value": "y" * 7000}],
            "tags": [{"key": "long-tag", "value": "t" * 9000}],
        },
    )
    assert r.status_code == 200, r.text
    r = api.post(
        f"{MLFLOW}/runs/set-tag", json={"run_id": run_id, "key": "t2", "value": "u" * 8001}
    )
    assert r.status_code == 200, r.text
    data = api.get(f"{MLFLOW}/runs/get", params={"run_id": run_id}).json()["run"]["data"]
    params = {p["key"]: p["value"] for p in data["params"]}
    tags = {t["key"]: t["value"] for t in data["tags"]}
    assert params["long"] == "x" * 6000 and params["long2"] == "y" * 6000
    assert tags["long-tag"] == "t" * 8000 and tags["t2"] == "u" * 8000


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


@pytest.mark.parametrize(
    "path",
    [
        "../../etc/passwd",
        "0/a/../../../escaped.txt",
        "%2e%2e/%2e%2e/escaped.txt",
        "..%2F..%2Fescaped.txt",
        "%2Fetc%2Fpasswd",
        "/etc/passwd",
        "/tmp/escaped.txt",
    ],
)
@pytest.mark.parametrize("method", ["PUT", "GET"])
def test_artifact_paths_escaping_the_root(lapis_server: Any, path: str, method: str) -> None:
    status, body = _raw(lapis_server, method, f"/api/2.0/mlflow-artifacts/artifacts/{path}", b"x")
    assert status == 400, body
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert ".." in body["message"] or "absolute" in body["message"]
    assert not list(lapis_server.home.parent.rglob("escaped.txt"))
    assert not Path("/tmp/escaped.txt").exists()


def test_artifact_listing_outside_the_root(api: httpx.Client) -> None:
    listing = api.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": "../.."})
    _err(listing, 400, "INVALID_PARAMETER_VALUE", "..")
    absolute = api.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": "/etc"})
    _err(absolute, 400, "INVALID_PARAMETER_VALUE", "absolute")


def test_duplicate_experiment_name(api: httpx.Client) -> None:
    assert api.post(f"{MLFLOW}/experiments/create", json={"name": "twice"}).is_success
    r = api.post(f"{MLFLOW}/experiments/create", json={"name": "twice"})
    _err(r, 400, "RESOURCE_ALREADY_EXISTS", "twice")
    other = api.post(f"{MLFLOW}/experiments/create", json={"name": "twice-b"}).json()
    r = api.post(
        f"{MLFLOW}/experiments/update",
        json={"experiment_id": other["experiment_id"], "new_name": "twice"},
    )
    _err(r, 400, "RESOURCE_ALREADY_EXISTS", "twice")
    assert api.post(f"{MLFLOW}/registered-models/create", json={"name": "dup-model"}).is_success
    r = api.post(f"{MLFLOW}/registered-models/create", json={"name": "dup-model"})
    _err(r, 400, "RESOURCE_ALREADY_EXISTS", "dup-model")


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
    # The right token with the wrong scheme is not accepted either.
    basic = httpx.get(
        f"{lapis_server.url}{path}", headers={"Authorization": f"Basic {lapis_server.token}"}
    )
    assert basic.status_code == 401 and basic.json()["error_code"] == "UNAUTHENTICATED"
    assert httpx.get(f"{lapis_server.url}/healthz").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"{MLFLOW}/experiments/create"),
        ("POST", "/ajax-api/2.0/mlflow/runs/search"),
        ("POST", "/api/v1/runs"),
        ("PUT", "/api/2.0/mlflow-artifacts/artifacts/0/x/artifacts/f.txt"),
    ],
)
def test_writes_need_a_token_and_change_nothing(
    lapis_server: Any, api: httpx.Client, method: str, path: str
) -> None:
    name = f"no-token-{method}-{path.replace('/', '_')}"
    before = api.get("/api/v1/experiments", params={"view": "all"}).json()["experiments"]
    for headers in ({}, {"Authorization": "Bearer lapis_wrong"}):
        r = httpx.request(
            method,
            f"{lapis_server.url}{path}",
            json={"name": name, "experiment_name": name, "experiment_ids": ["0"]},
            headers=headers,
        )
        _err(r, 401, "UNAUTHENTICATED")
        assert r.json()["message"]
    after = api.get("/api/v1/experiments", params={"view": "all"}).json()["experiments"]
    assert after == before


BIG = 2**63  # one past the largest int64: MLflow's protobuf fields cannot hold it


def test_out_of_range_integers_are_rejected_not_500(api: httpx.Client, run_id: str) -> None:
    """Numbers that do not fit MLflow's int64 fields are bad input, never an internal error."""
    exp_id = api.get(f"{MLFLOW}/runs/get", params={"run_id": run_id}).json()["run"]["info"][
        "experiment_id"
    ]
    metric = {"run_id": run_id, "key": "m", "value": 1, "timestamp": 1}
    value_cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", f"{MLFLOW}/runs/log-metric", {**metric, "step": BIG}, "step"),
        ("POST", f"{MLFLOW}/runs/log-metric", {**metric, "step": -BIG - 1}, "step"),
        ("POST", f"{MLFLOW}/runs/log-metric", {**metric, "timestamp": BIG}, "timestamp"),
        (
            "POST",
            f"{MLFLOW}/runs/log-batch",
            {"run_id": run_id, "metrics": [{**metric, "step": BIG}]},
            "step",
        ),
        (
            "POST",
            f"/api/v1/runs/{run_id}/log",
            {"metrics": {"key": ["m"], "value": [1.0], "step": [BIG], "timestamp": [1]}},
            "step",
        ),
        ("POST", f"{MLFLOW}/runs/create", {"experiment_id": exp_id, "start_time": BIG}, "start"),
        ("POST", f"{MLFLOW}/runs/update", {"run_id": run_id, "end_time": BIG}, "end_time"),
    ]
    problems = []  # every case is tried, so one run lists them all
    for method, path, body, field in value_cases:
        r = api.request(method, path, json=body)
        ok = r.status_code == 400 and r.json().get("error_code") == "INVALID_PARAMETER_VALUE"
        if not ok or field not in r.json().get("message", ""):
            problems.append(f"{path} {body}: {r.status_code} {r.text[:200]}")
    id_cases: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"{MLFLOW}/experiments/get", {"experiment_id": str(BIG)}),
        ("POST", f"{MLFLOW}/runs/search", {"experiment_ids": [str(BIG)]}),
        ("POST", f"{MLFLOW}/runs/create", {"experiment_id": str(BIG)}),
        ("GET", f"{MLFLOW}/model-versions/get", {"name": "no-model", "version": str(BIG)}),
    ]
    for method, path, args in id_cases:
        r = api.get(path, params=args) if method == "GET" else api.post(path, json=args)
        codes = ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
        if not 400 <= r.status_code < 500 or r.json().get("error_code") not in codes:
            problems.append(f"{path} {args}: {r.status_code} {r.text[:200]}")
    # A filter may compare with any number: no run started after 2**63, so none match.
    r = api.post(
        f"{MLFLOW}/runs/search",
        json={"experiment_ids": [exp_id], "filter": f"attributes.start_time > {BIG}"},
    )
    if r.status_code != 200 or r.json().get("runs"):
        problems.append(f"search start_time > {BIG}: {r.status_code} {r.text[:200]}")
    assert not problems, "\n".join(problems)
    # Nothing out of range slipped in with a changed value.
    r = api.get(f"{MLFLOW}/metrics/get-history", params={"run_id": run_id, "metric_key": "m"})
    assert all(-(2**63) <= p["step"] < 2**63 and p["step"] != -(2**63) for p in r.json()["metrics"])
