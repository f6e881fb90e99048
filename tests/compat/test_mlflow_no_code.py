"""No-code MLflow deployments run in the environment the model's own files ask for.

A LightGBM model is trained by a job (in the stand-in for Azure's lightgbm curated
environment), registered from the job's output as an ``mlflow_model``, and deployed
online and to a batch endpoint with neither an environment nor a scoring script — as
Azure allows. Lapis' own interpreter has no LightGBM, so the deployment only works if
the model's ``conda.yaml`` is built for it, as Azure does.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

from jobkit import batch_predictions, lapis_cli, log_text, submit, wait

FILES = Path(__file__).parent / "files"


def _json(server: Any, *args: str) -> Any:
    done = lapis_cli(server, *args, "-o", "json")
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return json.loads(done.stdout) if done.stdout.strip() else None


def test_a_lightgbm_model_deploys_without_an_environment(lapis_server: Any, tmp_path: Path) -> None:
    assert importlib.util.find_spec("lightgbm") is None, "the test needs a server without it"
    job = submit(lapis_server, FILES / "jobs" / "lightgbm.yml")
    done = wait(lapis_server, job["name"], timeout=600)
    assert done["status"] == "Completed", log_text(lapis_server, job["name"])

    uid = uuid.uuid4().hex[:6]
    model = f"compat-lgbm-{uid}"
    _json(
        lapis_server,
        "model",
        "create",
        "--name",
        model,
        "--type",
        "mlflow_model",
        "--path",
        f"azureml://jobs/{job['name']}/outputs/model",
    )
    folder = tmp_path / "mlflow"
    shutil.copytree(FILES / "mlflow", folder)
    for yml in folder.glob("*.yml"):
        text = yml.read_text().replace("compat-lgbm", model)
        yml.write_text(text.replace("compat-mlflow", f"compat-mlflow-{uid}"))

    # online: the instance runs in an environment built from the model's conda.yaml
    _json(lapis_server, "online-endpoint", "create", "-f", str(folder / "endpoint.yml"))
    created = _json(
        lapis_server, "online-deployment", "create", "-f", str(folder / "deployment.yml")
    )
    assert created["provisioning_state"] == "Succeeded", created.get("state_reason")
    assert created["environment_label"].startswith(f"model {model}:1 (conda.yaml)")
    scored = _json(
        lapis_server,
        "online-endpoint",
        "invoke",
        f"compat-mlflow-{uid}",
        "--request-file",
        str(folder / "sample-request.json"),
        "--deployment",
        "lgbm",
    )
    assert scored == [0, 1, 2]

    # batch: each invocation's job gets the same environment (a cache hit by now)
    _json(lapis_server, "batch-endpoint", "create", "-f", str(folder / "batch-endpoint.yml"))
    _json(lapis_server, "batch-deployment", "create", "-f", str(folder / "batch-deployment.yml"))
    invoked = _json(
        lapis_server,
        "batch-endpoint",
        "invoke",
        f"compat-mlflow-{uid}-batch",
        "--input",
        str(folder / "data"),
        "--stream",
    )
    assert invoked["status"] == "Completed", log_text(lapis_server, invoked["name"])
    rows = batch_predictions(lapis_server, invoked["name"], tmp_path / "dl")
    assert [row.split(",")[-1] for row in rows] == ["0", "1", "2", "3", "4"]
