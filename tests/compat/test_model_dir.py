"""Scoring scripts written for Azure find their model where Azure puts it.

``AZUREML_MODEL_DIR`` is the folder that *holds* the registered model: a model
registered from ``path: model`` is at ``$AZUREML_MODEL_DIR/model/…`` (Azure's
``os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model/…")`` and
``glob(AZUREML_MODEL_DIR + "/*/")`` idioms), one registered from a single file
directly inside it. Batch scoring scripts also get ``AZUREML_BI_OUTPUT_PATH``.
The files under files/online and files/batch are written in Azure's shapes and
deployed unchanged (but for a unique endpoint name).
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from jobkit import batch_predictions, lapis_cli

FILES = Path(__file__).parent / "files"


def _copy(kind: str, tmp_path: Path, old: str) -> tuple[Path, str]:
    name = f"{old}-{uuid.uuid4().hex[:6]}"
    folder = tmp_path / kind
    shutil.copytree(FILES / kind, folder)
    for yml in folder.glob("*.yml"):
        yml.write_text(yml.read_text().replace(old, name))
    return folder, name


def _json(server: Any, *args: str) -> Any:
    done = lapis_cli(server, *args, "-o", "json")
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return json.loads(done.stdout) if done.stdout.strip() else None


@pytest.mark.parametrize(
    ("deployment", "expected"),
    [
        ("folder", [4.75, -0.75]),  # weights [0.5, -1, 2] + 0.25 on the sample's rows
        ("glob", [4.75, -0.75]),
        ("file", [6.0, 1.0]),  # linear.json: weights [1, 1, 1], no bias
    ],
)
def test_online_scoring_scripts_find_the_model_the_azure_way(
    lapis_server: Any, tmp_path: Path, deployment: str, expected: list[float]
) -> None:
    folder, endpoint = _copy("online", tmp_path, "compat-endpoint")
    _json(lapis_server, "online-endpoint", "create", "-f", str(folder / "endpoint.yml"))
    created = _json(
        lapis_server, "online-deployment", "create", "-f", str(folder / f"{deployment}.yml")
    )
    assert created["provisioning_state"] == "Succeeded", created.get("state_reason")
    scored = _json(
        lapis_server,
        "online-endpoint",
        "invoke",
        endpoint,
        "--request-file",
        str(folder / "sample-request.json"),
        "--deployment",
        deployment,
    )
    assert scored == expected


def test_batch_scripts_get_the_model_folder_and_the_output_path(
    lapis_server: Any, tmp_path: Path
) -> None:
    folder, endpoint = _copy("batch", tmp_path, "compat-batch")
    _json(lapis_server, "batch-endpoint", "create", "-f", str(folder / "endpoint.yml"))
    _json(lapis_server, "batch-deployment", "create", "-f", str(folder / "deployment.yml"))
    updated = _json(
        lapis_server,
        "batch-endpoint",
        "update",
        "--name",
        endpoint,
        "--set",
        "defaults.deployment_name=tripler",
        "--set",
        "description=scores text files",
    )
    assert updated["defaults"]["deployment_name"] == "tripler"
    assert updated["description"] == "scores text files"
    job = _json(
        lapis_server,
        "batch-endpoint",
        "invoke",
        endpoint,
        "--input",
        str(folder / "data"),
        "--stream",
    )
    assert job["status"] == "Completed", job["status_reason"]
    rows = batch_predictions(lapis_server, job["name"], tmp_path / "dl")
    assert rows == ["n1.txt,3", "n2.txt,6", "n3.txt,9"]
    out = tmp_path / "dl" / "named-outputs" / "score"
    assert sorted((out / "seen-by-script.txt").read_text().split()) == [
        "n1.txt",
        "n2.txt",
        "n3.txt",
    ]


def test_batch_deployment_in_the_current_schema_with_a_settings_block(
    lapis_server: Any, tmp_path: Path
) -> None:
    """``type: model`` with ``settings:`` (Azure's current schema) runs with those settings."""
    folder, endpoint = _copy("batch", tmp_path, "compat-batch")
    _json(lapis_server, "batch-endpoint", "create", "-f", str(folder / "endpoint.yml"))
    made = _json(
        lapis_server, "batch-deployment", "create", "-f", str(folder / "deployment-settings.yml")
    )
    assert made["output_file_name"] == "tripled.csv"
    assert made["mini_batch_size"] == 1 and made["max_concurrency_per_instance"] == 2
    assert made["retry_settings"] == {"max_retries": 2, "timeout": 60}
    job = _json(
        lapis_server,
        "batch-endpoint",
        "invoke",
        "--name",
        endpoint,
        "--deployment-name",
        "tripler-settings",
        "--input",
        str(folder / "data"),
        "--input-type",
        "uri_folder",
        "--stream",
    )
    assert job["status"] == "Completed", job["status_reason"]
    rows = batch_predictions(lapis_server, job["name"], tmp_path / "dl", file="tripled.csv")
    assert sorted(rows) == ["n1.txt,3", "n2.txt,6", "n3.txt,9"]


def test_batch_invoke_scores_one_file_local_or_by_url(
    lapis_server: Any, tmp_path: Path, web: tuple[str, list[str]]
) -> None:
    """``--input-type uri_file``: one local file, or one fetched from an http(s) URL."""
    folder, endpoint = _copy("batch", tmp_path, "compat-batch")
    _json(lapis_server, "batch-endpoint", "create", "-f", str(folder / "endpoint.yml"))
    _json(lapis_server, "batch-deployment", "create", "-f", str(folder / "deployment.yml"))
    (tmp_path / "site" / "n7.txt").write_text("7\n")
    for given, expected in (
        (str(folder / "data" / "n2.txt"), ["n2.txt,6"]),
        (f"{web[0]}/n7.txt", ["n7.txt,21"]),
    ):
        job = _json(
            lapis_server,
            "batch-endpoint",
            "invoke",
            "-n",
            endpoint,
            "--input",
            given,
            "--input-type",
            "uri_file",
            "--stream",
        )
        assert job["status"] == "Completed", job["status_reason"]
        assert job["inputs"]["data"]["type"] == "uri_file"
        assert batch_predictions(lapis_server, job["name"], tmp_path / job["name"]) == expected
    refused = lapis_cli(
        lapis_server, "batch-endpoint", "invoke", endpoint,
        "--input", f"{web[0]}/n7.txt", "--input-type", "uri_folder",
    )  # fmt: skip
    assert refused.returncode == 1
    assert "a folder cannot be fetched over http(s)" in refused.stderr
