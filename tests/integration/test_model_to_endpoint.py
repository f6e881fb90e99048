"""The whole chain on a real server: a job trains an MLflow model, the registry takes
its output, an online deployment serves it, the CLI invokes it, and the lineage
reads job → model → deployment both ways."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path
from typing import Any

from jobkit import http_for, lapis_cli, submit, wait, write_job

TRAIN = """\
import sys
import mlflow
import mlflow.sklearn
from sklearn.linear_model import LinearRegression

X = [[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]]
y = [2 * a + 3 * b + 1 for a, b in X]
model = LinearRegression().fit(X, y)
with mlflow.start_run():
    mlflow.log_metric("r2", model.score(X, y))
mlflow.sklearn.save_model(model, sys.argv[1])
print("saved", flush=True)
"""


def ok(server: Any, *args: str) -> Any:
    proc = lapis_cli(server, *args, "-o", "json")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def text(server: Any, *args: str) -> str:
    proc = lapis_cli(server, *args)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return proc.stdout


def test_job_output_to_served_model_with_lineage(lapis_server: Any, tmp_path: Path) -> None:
    job_file = write_job(
        tmp_path / "job",
        """\
        command: python train.py ${{outputs.model}}
        code: src
        outputs:
          model:
            type: mlflow_model
        environment: system
        """,
        {"src/train.py": TRAIN},
    )
    job = wait(lapis_server, submit(lapis_server, job_file)["name"], timeout=120)
    assert job["status"] == "Completed", job["status_reason"]

    model = f"reg-{uuid.uuid4().hex[:8]}"
    path = f"azureml://jobs/{job['name']}/outputs/model"
    made = ok(lapis_server, "model", "create", "--name", model, "--path", path,
              "--type", "mlflow_model")  # fmt: skip
    assert made["type"] == "mlflow_model" and made["job"] == job["name"]

    ep = f"ep-{uuid.uuid4().hex[:8]}"
    ok(lapis_server, "online-endpoint", "create", "--name", ep)
    deployment = tmp_path / "blue.yml"
    deployment.write_text(
        textwrap.dedent(
            f"""\
            name: blue
            endpoint_name: {ep}
            model: azureml:{model}:1
            instance_count: 1
            """
        )
    )
    d = ok(lapis_server, "online-deployment", "create", "-f", str(deployment), "--all-traffic")
    assert d["provisioning_state"] == "Succeeded", d

    request = tmp_path / "request.json"
    request.write_text(
        json.dumps({"input_data": {"columns": ["a", "b"], "data": [[1.0, 1.0], [0.0, 2.0]]}})
    )
    predictions = ok(lapis_server, "online-endpoint", "invoke", ep, "--request-file", str(request))
    assert [round(p, 6) for p in predictions] == [6.0, 7.0]
    malformed = tmp_path / "bad.json"
    malformed.write_text(json.dumps({"rows": [[1.0, 1.0]]}))
    bad = lapis_cli(lapis_server, "online-endpoint", "invoke", ep, "--request-file", str(malformed))
    assert bad.returncode == 1 and "400" in bad.stderr and "input_data" in bad.stderr, bad.stderr

    # Lineage: the model names its job, and the deployment serving it.
    lineage = ok(lapis_server, "model", "show", model, "--version", "1")["lineage"]
    assert lineage["job"]["name"] == job["name"]
    assert lineage["deployments"] == [
        {"endpoint": ep, "deployment": "blue", "provisioning_state": "Succeeded"}
    ]
    shown = text(lapis_server, "model", "show", model, "--version", "1")
    assert job["name"] in shown and f"{ep}/blue (Succeeded)" in shown, shown
    table = text(lapis_server, "online-endpoint", "show", ep)
    assert "deployment blue" in table and f"azureml:{model}:1" in table, table

    # Telemetry counted both requests; the caller's 400 is not a serving error.
    with http_for(lapis_server) as http:
        totals = http.get(f"/api/v1/endpoints/{ep}/metrics")["totals"]
    assert totals["requests"] == 2 and totals["by_class"] == {"2xx": 1, "4xx": 1}, totals
    assert totals["errors"] == 0
