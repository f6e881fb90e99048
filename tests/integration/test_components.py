"""Components through the CLI and the API, on both stores: Azure's component file
registered with its code uploaded as a snapshot, versions that never change (the same
file again answers the same version), ``@latest`` over archived versions, one-line
mistakes, and the roles that may read or register them."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from clusterkit import json_cli
from jobkit import lapis_cli

pytestmark = pytest.mark.stores("sqlite", "postgres")
FILES = Path(__file__).parents[1] / "compat" / "files" / "components"


def _copy(tmp_path: Path, name: str) -> Path:
    """The compat component under a name of this test's own (servers are shared)."""
    folder = tmp_path / uuid.uuid4().hex[:6]
    shutil.copytree(FILES, folder)
    spec = folder / "train.yml"
    spec.write_text(spec.read_text().replace("name: train_model", f"name: {name}"))
    return spec


def test_a_component_file_is_registered_with_its_code_and_versions_never_change(
    lapis_server: Any, tmp_path: Path
) -> None:
    name = f"train_{uuid.uuid4().hex[:6]}"
    spec = _copy(tmp_path, name)
    made = json_cli(lapis_server, "component", "create", "-f", str(spec))
    assert (made["name"], made["version"], made["id"]) == (name, "1", f"azureml:{name}:1")
    assert made["environment"] == "azureml:AzureML-sklearn-1.5@latest"
    assert made["code"] and made["is_deterministic"]
    with lapis_server.client() as http:
        assert http.head(f"/api/v1/snapshots/{made['code']}").status_code == 200
    inputs = {i["name"]: i for i in made["inputs"]}
    assert (inputs["max_epochs"]["default"], inputs["max_epochs"]["max"]) == (10, 1000)
    assert inputs["warm_start"]["optional"] and inputs["learning_rate_schedule"]["enum"]
    assert [o["name"] for o in made["outputs"]] == ["model_output"]

    # the same file again: the same version (scripts re-run `az ml component create`)
    again = json_cli(lapis_server, "component", "create", "-f", str(spec))
    assert again["version"] == "1" and again["created_at"] == made["created_at"]
    # other content under the same version: refused, one line
    spec.write_text(spec.read_text().replace("Fits a linear", "Fits a better"))
    changed = lapis_cli(lapis_server, "component", "create", "-f", str(spec))
    assert changed.returncode == 1 and "already exists with other content" in changed.stderr
    assert "Traceback" not in changed.stderr
    # changed code is other content too; without version: the next number
    (spec.parent / "src" / "train.py").write_text("print('v2')\n")
    spec.write_text(spec.read_text().replace('version: "1"\n', ""))
    second = json_cli(lapis_server, "component", "create", "-f", str(spec))
    assert second["version"] == "2" and second["code"] != made["code"]

    shown = lapis_cli(lapis_server, "component", "show", "-n", name)
    assert shown.returncode == 0 and f"{name}:2" in shown.stdout and "Fits a better" in shown.stdout
    versions = json_cli(lapis_server, "component", "list", "-n", name)
    assert [v["version"] for v in versions] == ["2", "1"]
    archived = lapis_cli(lapis_server, "component", "archive", "-n", name, "--version", "2")
    assert archived.returncode == 0 and f"Archived version 2 of {name}" in archived.stdout
    assert json_cli(lapis_server, "component", "show", "-n", name)["version"] == "1"
    listed = {c["name"]: c["version"] for c in json_cli(lapis_server, "component", "list")}
    assert listed[name] == "1"
    assert lapis_cli(lapis_server, "component", "restore", "-n", name).returncode == 0
    assert json_cli(lapis_server, "component", "show", "-n", name, "-v", "latest")["version"] == "2"


def test_mistakes_are_one_line_and_roles_decide_who_registers(
    lapis_server: Any, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("name: Bad-Name\ncommand: echo\n")
    done = lapis_cli(lapis_server, "component", "create", "-f", str(bad))
    assert done.returncode == 1 and f"{bad}:1" in done.stderr and "lowercase" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    missing = lapis_cli(lapis_server, "component", "show", "-n", "no_such_component")
    assert missing.returncode == 1 and "not found" in missing.stderr
    with lapis_server.client() as http:
        # the server checks too: a client that skips the CLI gets the same line
        r = http.post("/api/v1/components", json={"yaml": "name: c\n", "source": "c.yml"})
        assert r.status_code == 400 and "c.yml" in r.json()["message"]
        coded = {"yaml": "name: c\ncode: ./src\ncommand: x\n", "source": "c.yml"}
        r = http.post("/api/v1/components", json=coded)
        assert r.status_code == 400 and "snapshot" in r.json()["message"]

    name = f"shared_{uuid.uuid4().hex[:6]}"
    json_cli(lapis_server, "component", "create", "-f", str(_copy(tmp_path, name)))
    reader = f"comp-reader-{uuid.uuid4().hex[:6]}"
    with lapis_server.client() as admin:
        admin.post("/api/v1/users", json={"name": reader, "roles": ["Reader"]})
        token = admin.post("/api/v1/tokens", json={"name": "t", "user": reader}).json()["token"]
    with httpx.Client(base_url=lapis_server.url,
                      headers={"Authorization": f"Bearer {token}"}) as me:  # fmt: skip
        assert me.get(f"/api/v1/components/{name}/versions/latest").status_code == 200
        refused = me.post("/api/v1/components", json={"yaml": "name: c\ncommand: x\n"})
        assert refused.status_code == 403
        assert me.post(f"/api/v1/components/{name}/archive").status_code == 403


def test_the_sdk_loads_registers_and_reads_components_as_azure_ai_ml_does(
    lapis_server: Any, tmp_path: Path
) -> None:
    from lapis.ml import MLClient, load_component
    from lapis.ml.entities import CommandComponent

    name = f"sdk_{uuid.uuid4().hex[:6]}"
    train = load_component(source=_copy(tmp_path, name))
    assert isinstance(train, CommandComponent) and train.name == name
    assert train.inputs["max_epochs"] == {"type": "integer", "default": 10, "min": 1, "max": 1000}
    with MLClient(lapis_server.url, lapis_server.token) as ml:
        made = ml.components.create_or_update(train)
        assert (made.version, made.id) == ("1", f"azureml:{name}:1") and made.code
        assert ml.components.get(name, version="1").inputs == made.inputs
        assert name in {c.name for c in ml.components.list()}
        ml.components.archive(name, version="1")
        assert name not in {c.name for c in ml.components.list()}
        ml.components.restore(name)
        assert ml.components.get(name, label="latest").version == "1"
