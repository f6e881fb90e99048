"""``lapis model …`` against a real server: uploads, job outputs, mlflow versions, bad input."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from jobkit import lapis_cli, submit, wait, write_job

pytestmark = [pytest.mark.timeout(120), pytest.mark.stores("sqlite", "postgres")]

TRAIN = """\
import os, sys
data, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "weights.bin"), "wb") as fh:
    fh.write(open(data, "rb").read() * 3)
os.makedirs("outputs/model", exist_ok=True)  # the run's artifacts keep a copy too
with open("outputs/model/weights.bin", "wb") as fh:
    fh.write(b"artifact copy")
"""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ok(server: Any, *args: str) -> Any:
    res = lapis_cli(server, "model", *args, "-o", "json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def fails(server: Any, *args: str, expect: str) -> None:
    res = lapis_cli(server, "model", *args)
    assert res.returncode == 1, (args, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert expect in res.stderr, res.stderr


def digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_local_folder_versions_download_archive(lapis_server: Any, tmp_path: Path) -> None:
    name = unique("local")
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "model.pkl").write_bytes(os.urandom(300_000))
    (src / "sub" / "conf space.json").write_text('{"a": 1}')
    v1 = ok(lapis_server, "create", "--name", name, "--path", str(src), "--tag", "team=cv")
    assert (v1["version"], v1["status"], v1["tags"]) == (1, "READY", {"team": "cv"})
    v2 = ok(lapis_server, "create", "--name", name, "--path", str(src / "model.pkl"))
    assert v2["version"] == 2
    out = tmp_path / "dl"
    ok(lapis_server, "download", name, "--version", "1", "--download-path", str(out))
    assert digest(out / name) == digest(src)
    ok(lapis_server, "download", name, "--version", "2", "--download-path", str(tmp_path / "d2"))
    assert digest(tmp_path / "d2" / name) == {"model.pkl": digest(src)["model.pkl"]}

    upd = ok(lapis_server, "update", name, "--version", "1", "--description", "first",
             "--set-tag", "stage=dev")  # fmt: skip
    assert upd["description"] == "first" and upd["tags"]["stage"] == "dev"
    ok(lapis_server, "archive", name, "--version", "1")
    assert [m["version"] for m in ok(lapis_server, "list", "--name", name)] == [2]
    listed = ok(lapis_server, "list", "--name", name, "--include-archived")
    assert [m["version"] for m in listed] == [2, 1]
    ok(lapis_server, "restore", name, "--version", "1")
    assert ok(lapis_server, "show", name, "--label", "latest")["version"] == 2
    shown = lapis_cli(lapis_server, "model", "show", name, "--version", "1")
    assert "deployments: none" in shown.stdout and "first" in shown.stdout

    fails(lapis_server, "create", "--name", name, "--version", "2", "--path", str(src),
          expect="already has a version 2")  # fmt: skip
    fails(lapis_server, "create", "--name", name, "--path", str(tmp_path / "nope"),
          expect="does not exist")  # fmt: skip
    bad = tmp_path / "model.yml"
    bad.write_text(f"name: {name}\npath: model\nframework: torch\n")
    fails(lapis_server, "create", "-f", str(bad), expect="model.yml:3")
    good = tmp_path / "good.yml"
    good.write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/model.schema.json\n"
        f"name: {name}\nversion: 7\npath: model\ntype: mlflow_model\n"
        "properties:\n  flavour: sk\n"
    )
    v7 = ok(lapis_server, "create", "-f", str(good))
    assert (v7["version"], v7["type"], v7["properties"]) == (7, "mlflow_model", {"flavour": "sk"})


def test_job_output_lineage_and_errors(lapis_server: Any, tmp_path: Path) -> None:
    job_file = write_job(
        tmp_path,
        """\
        command: python train.py ${{inputs.data}} ${{outputs.model}}
        code: src
        inputs:
          data:
            type: uri_file
            path: data/train.csv
        outputs:
          model:
            type: uri_folder
        environment: system
        compute: azureml:local
        """,
        {"src/train.py": TRAIN, "data/train.csv": "x,y\n1,2\n"},
    )
    job = submit(lapis_server, job_file)
    assert wait(lapis_server, job["name"])["status"] == "Completed"
    name = unique("fromjob")
    path = f"azureml://jobs/{job['name']}/outputs/model"
    made = ok(lapis_server, "create", "--name", name, "--path", path)
    assert made["run_id"] == job["run_id"] and made["job"] == job["name"]
    lin = ok(lapis_server, "show", name, "--version", "1")["lineage"]
    assert lin["job"]["name"] == job["name"] and lin["job"]["status"] == "Completed"
    assert "train.csv" in lin["inputs"]["data"]["path"]
    assert lin["environment"]["name"] and lin["deployments"] == []
    text = lapis_cli(lapis_server, "model", "show", name, "--version", "1").stdout
    for piece in (job["name"], "Completed", "train.csv", "deployments: none"):
        assert piece in text, text
    out = tmp_path / "dl"
    ok(lapis_server, "download", name, "--version", "1", "--download-path", str(out))
    assert (out / name / "weights.bin").read_bytes() == b"x,y\n1,2\n" * 3
    # the output was written where Azure writes it: the default datastore, azureml/<job>/<o>
    shown = ok(lapis_server, "show", name, "--version", "1")
    assert f"datastores/workspaceblobstore/azureml/{job['name']}/model" in shown["path"], shown
    by_path = f"azureml://jobs/{job['name']}/outputs/artifacts/paths/outputs/model"
    assert ok(lapis_server, "create", "--name", name, "--path", by_path)["version"] == 2
    ok(lapis_server, "download", name, "--version", "2", "--download-path", str(tmp_path / "d2"))
    assert (tmp_path / "d2" / name / "weights.bin").read_bytes() == b"artifact copy"

    fails(lapis_server, "create", "--name", name, "--path", "azureml://jobs/no_such_job/outputs/model",
          expect="no_such_job")  # fmt: skip
    fails(lapis_server, "create", "--name", name, "--path", f"azureml://jobs/{job['name']}/outputs/nope",
          expect="no output named 'nope'")  # fmt: skip


def test_mlflow_register_model_is_a_lapis_version(mlflow_env: Any, tmp_path: Path) -> None:
    import mlflow

    name = unique("mlf")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.txt").write_text("weights")
    (tmp_path / "m" / "MLmodel").write_text("flavors: {}\n")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(tmp_path / "m"), artifact_path="model")
    mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    assert mv.version == "1"
    listed = ok(mlflow_env, "list", "--name", name)
    assert [(m["name"], m["version"], m["run_id"]) for m in listed] == [(name, 1, run.info.run_id)]
    assert ok(mlflow_env, "show", name)["lineage"]["job"] is None
    out = tmp_path / "dl"
    ok(mlflow_env, "download", name, "--version", "1", "--download-path", str(out))
    assert (out / name / "w.txt").read_text() == "weights"
    # and a Lapis-made version is an MLflow version
    made = ok(mlflow_env, "create", "--name", name, "--path", str(tmp_path / "m"))
    got = mlflow.MlflowClient().get_model_version(name, str(made["version"]))
    assert got.version == "2"
    fetched = mlflow.artifacts.download_artifacts(f"models:/{name}/2", dst_path=str(tmp_path / "x"))
    assert (Path(fetched) / "w.txt").read_text() == "weights"
