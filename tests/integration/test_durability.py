"""Nothing acknowledged is lost: kill -9 the server right after (or while) writes land, restart,
compare the full metric history point for point."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.stores("sqlite", "postgres")

History = list[tuple[int, float, int]]  # (step, value, timestamp)


def _history(server: Any, run_id: str, key: str) -> History:
    """The full history of one metric, through MLflow's paged get-history."""
    points: History = []
    token = None
    with server.client() as c:
        while True:
            params: dict[str, Any] = {"run_id": run_id, "metric_key": key, "max_results": 25000}
            if token:
                params["page_token"] = token
            r = c.get("/api/2.0/mlflow/metrics/get-history", params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            points += [(p["step"], p["value"], p["timestamp"]) for p in body.get("metrics", [])]
            token = body.get("next_page_token")
            if not token:
                return sorted(points)


def _writer(url: str, token: str, run_id: str, acked: list[History], stop: threading.Event) -> None:
    """Send 1,000-point batches until the server dies; remember exactly what was acknowledged."""
    headers = {"Authorization": f"Bearer {token}"}
    batch = 0
    with httpx.Client(base_url=url, headers=headers, timeout=10) as c:
        while not stop.is_set():
            points = [
                (batch * 1000 + i, batch + i / 1000, 1_700_000_000_000 + i) for i in range(1000)
            ]
            metrics = [{"key": "loss", "value": v, "timestamp": t, "step": s} for s, v, t in points]
            try:
                r = c.post(
                    "/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, "metrics": metrics}
                )
            except httpx.HTTPError:
                return
            if r.status_code != 200:
                return
            acked.append(points)
            batch += 1


@pytest.mark.timeout(180)
def test_kill9_mid_stream_loses_no_acknowledged_point(fresh_server: Any) -> None:
    with fresh_server.client() as c:
        exp = c.post("/api/2.0/mlflow/experiments/create", json={"name": "durable"}).json()
        run = c.post("/api/2.0/mlflow/runs/create", json={"experiment_id": exp["experiment_id"]})
        run_id = run.json()["run"]["info"]["run_id"]
        native = [(s, s * 0.5, 7 + s) for s in range(5000)]
        r = c.post(
            f"/api/v1/runs/{run_id}/log",
            json={
                "metrics": {
                    "key": ["native"] * len(native),
                    "value": [v for _, v, _ in native],
                    "step": [s for s, _, _ in native],
                    "timestamp": [t for _, _, t in native],
                },
                "params": {"lr": "0.1"},
                "tags": {"phase": "train"},
            },
        )
        assert r.status_code == 200, r.text
    acked: list[History] = []
    stop = threading.Event()
    writer = threading.Thread(
        target=_writer, args=(fresh_server.url, fresh_server.token, run_id, acked, stop)
    )
    writer.start()
    deadline = time.monotonic() + 30
    while len(acked) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    fresh_server.kill9()  # mid-stream: requests are in flight
    stop.set()
    writer.join(timeout=30)
    assert len(acked) >= 20, "the writer never got going"

    fresh_server.start()
    stored = _history(fresh_server, run_id, "loss")
    stored_set = set(stored)
    for i, batch in enumerate(acked):
        missing = [p for p in batch if p not in stored_set]
        assert not missing, f"batch {i} was acknowledged but lost {len(missing)} points"
    # A batch is one transaction: the one in flight at the kill is all there or not at all.
    assert len(stored) % 1000 == 0 and len(stored) // 1000 in (len(acked), len(acked) + 1)
    assert _history(fresh_server, run_id, "native") == native
    with fresh_server.client() as c:
        again = c.get(f"/api/v1/runs/{run_id}").json()
    assert again["params"] == {"lr": "0.1"} and again["tags"]["phase"] == "train"


@pytest.mark.timeout(180)
def test_kill9_right_after_mlflow_client_acks(fresh_server: Any, point_mlflow: Any) -> None:
    """Everything the unmodified client was told succeeded survives an immediate kill -9."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    point_mlflow(fresh_server)
    c = MlflowClient()
    eid = c.create_experiment("durable-mlflow", tags={"k": "v"})
    run_id = c.create_run(eid, run_name="survivor").info.run_id
    expected: dict[str, History] = {"acc": [], "loss": []}
    for b in range(10):
        metrics = [
            Metric("loss", b + s / 997, 1_700_000_000_000 + b, b * 500 + s) for s in range(500)
        ]
        c.log_batch(
            run_id,
            metrics=metrics,
            params=[Param(f"p{b}", str(b))],
            tags=[RunTag(f"t{b}", "x" * b)],
        )
        expected["loss"] += [(m.step, m.value, m.timestamp) for m in metrics]
    for step in range(50):
        c.log_metric(run_id, "acc", step / 50, timestamp=1_700_000_000_000 + step, step=step)
        expected["acc"].append((step, step / 50, 1_700_000_000_000 + step))
    c.set_tag(run_id, "final", "yes")
    c.set_terminated(run_id, "FINISHED")
    fresh_server.kill9()  # at once, after the last acknowledgement

    fresh_server.start()
    point_mlflow(fresh_server)
    for key, points in expected.items():
        assert _history(fresh_server, run_id, key) == sorted(points), key
    run = MlflowClient().get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "survivor"
    assert run.data.params == {f"p{b}": str(b) for b in range(10)}
    assert {k: v for k, v in run.data.tags.items() if k.startswith("t")} == {
        f"t{b}": "x" * b for b in range(10)
    }
    assert run.data.tags["final"] == "yes"
    assert run.data.metrics == {"acc": 49 / 50, "loss": 9 + 499 / 997}
    assert MlflowClient().get_experiment(eid).tags["k"] == "v"


@pytest.mark.timeout(240)
def test_kill9_under_eight_writers_loses_no_acknowledged_point(fresh_server: Any) -> None:
    """Eight clients log 1,000-point batches to their own runs; kill -9 lands mid-stream."""
    with fresh_server.client() as c:
        exp = c.post("/api/2.0/mlflow/experiments/create", json={"name": "eight"}).json()
        run_ids = [
            c.post(
                "/api/2.0/mlflow/runs/create", json={"experiment_id": exp["experiment_id"]}
            ).json()["run"]["info"]["run_id"]
            for _ in range(8)
        ]
    acked: dict[str, list[History]] = {r: [] for r in run_ids}
    stop = threading.Event()
    writers = [
        threading.Thread(
            target=_writer, args=(fresh_server.url, fresh_server.token, r, acked[r], stop)
        )
        for r in run_ids
    ]
    for w in writers:
        w.start()
    deadline = time.monotonic() + 60
    while sum(len(a) for a in acked.values()) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    fresh_server.kill9()
    stop.set()
    for w in writers:
        w.join(timeout=30)
    assert sum(len(a) for a in acked.values()) >= 40, "the writers never got going"
    fresh_server.start()
    for run_id, batches in acked.items():
        stored = set(_history(fresh_server, run_id, "loss"))
        for i, batch in enumerate(batches):
            missing = [p for p in batch if p not in stored]
            assert not missing, f"run {run_id} batch {i}: acknowledged, {len(missing)} lost"
        assert len(stored) % 1000 == 0  # a batch is all there or not at all


@pytest.mark.timeout(180)
def test_kill9_during_a_model_registration_leaves_no_half_version(
    fresh_server: Any, tmp_path: Any
) -> None:
    """The server dies between a version's files: it comes back as a failed registration,
    never served as @latest; registering again gives a complete next version."""
    from lapis.sdk.models import model_base

    with fresh_server.client() as c:
        created = c.post(
            "/api/v1/models", json={"name": "crashy", "type": "custom_model", "upload": True}
        ).json()
        base = model_base(created["name"], created["version"])
        assert c.put(f"{base}/files/part-1.bin", content=b"first half").status_code == 200
    fresh_server.kill9()  # before part 2 and before /ready
    fresh_server.start()
    with fresh_server.client() as c:
        half = c.get(f"{base}").json()
        assert half["status"] == "FAILED_REGISTRATION", half
        assert "interrupted" in half["status_message"]
        r = c.post(f"{base}/ready")
        assert r.status_code == 400  # it cannot be completed after the fact
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "part-1.bin").write_bytes(b"first half")
    (folder / "part-2.bin").write_bytes(b"second half")
    from jobkit import lapis_cli

    done = lapis_cli(fresh_server, "model", "create", "--name", "crashy", "--path", str(folder))
    assert done.returncode == 0, done.stderr
    with fresh_server.client() as c:
        latest = c.get("/api/v1/models/crashy/versions/latest").json()
    assert str(latest["version"]) == "2" and latest["status"] == "READY", latest
    out = tmp_path / "down"
    done = lapis_cli(
        fresh_server,
        "model",
        "download",
        "crashy",
        "--version",
        "2",
        "--download-path",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.rglob("*.bin")) == ["part-1.bin", "part-2.bin"]
