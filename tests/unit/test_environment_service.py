"""Registered and curated environments over each metadata store, and what jobs resolve to."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lapis.environments.builder import READY
from lapis.environments.service import EnvironmentService, failure_reason
from lapis.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from lapis.specs.environment import from_conda, from_requirements
from lapis.specs.job import EnvironmentRef
from lapis.store.sql.engine import Database

HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"

CONDA = """\
name: demo
channels: [conda-forge]
dependencies:
  - python=3.11
  - pip
  - numpy=1.26
  - pip:
      - six
"""

ENV_YAML = """\
$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json
name: demo
image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04
description: a demo
tags:
  team: ml
conda_file:
  name: demo
  dependencies:
    - python=3.11
    - pip:
        - six
"""


@pytest.fixture
def envs(database: Database, tmp_path: Path) -> EnvironmentService:
    return EnvironmentService(database, tmp_path / "envs")


def test_create_from_yaml_with_inline_conda_mapping(envs: EnvironmentService) -> None:
    env = envs.create(ENV_YAML, "env.yml", principal_name="alice")
    assert (env.name, env.version, env.kind) == ("demo", "1", "built")
    assert env.image.startswith("mcr.microsoft.com/")
    assert env.spec["python"] == "3.11" and env.spec["requirements"] == ["six"]
    assert env.digest == from_conda({"dependencies": ["python=3.11", {"pip": ["six"]}]}).digest
    assert "six" in env.conda_file and env.tags == {"team": "ml"}
    assert env.created_by == "alice" and not env.curated and env.build is None


def test_conda_file_as_text_and_dict_and_pip_shorthand(envs: EnvironmentService) -> None:
    text = envs.create({"name": "t", "conda_file": CONDA})
    assert text.conda_file == CONDA  # the user's text is kept as written
    assert sorted(text.spec["requirements"]) == ["numpy==1.26.*", "six"]
    mapping = envs.create({"name": "t", "conda_file": {"dependencies": ["numpy=1.26", "six"]}})
    assert mapping.version == "2" and "numpy=1.26" in mapping.conda_file
    pip = envs.create({"name": "p", "pip": ["Six"], "python": HOST_PYTHON})
    assert pip.spec == {
        "python": HOST_PYTHON,
        "requirements": ["six"],
        "conda": [],
        "channels": [],
    }


def test_versions_auto_increment_and_latest(envs: EnvironmentService) -> None:
    for _ in range(3):
        envs.create({"name": "inc", "pip": ["six"]})
    envs.create({"name": "inc", "version": "10", "pip": ["six"]})
    envs.create({"name": "inc", "version": "exp-a", "pip": ["six"]})
    assert envs.create({"name": "inc", "pip": ["six"]}).version == "11"
    assert envs.get("inc").version == "11"  # numbers compare as numbers: 11 > 10 > 3
    assert envs.get("inc", label="latest").version == "11"
    assert envs.get("inc", "latest").version == "11"
    assert [e.version for e in envs.versions("inc")] == ["11", "10", "3", "2", "1", "exp-a"]
    assert [e.version for e in envs.list() if e.name == "inc"] == ["11"]
    envs.archive("inc", "11")
    assert envs.get("inc").version == "10"
    assert envs.get("inc", "11").archived is True


def test_duplicate_version_is_refused(envs: EnvironmentService) -> None:
    envs.create({"name": "dup", "version": "1", "image": "python:3.11-slim"})
    with pytest.raises(ResourceAlreadyExists, match="'dup' version '1' already exists"):
        envs.create({"name": "dup", "version": 1, "image": "python:3.11-slim"})


def test_document_errors_name_file_line_and_key(envs: EnvironmentService) -> None:
    text = "name: bad\nimage: python:3.11\ncondafile: conda.yml\n"
    with pytest.raises(InvalidParameterValue) as err:
        envs.create(text, "env.yml")
    assert err.value.message == (
        "env.yml:3: 'condafile' is not a valid key of an environment (did you mean 'conda_file'?)"
    )
    with pytest.raises(InvalidParameterValue, match=r"env\.yml:1: .*needs 'image' and/or"):
        envs.create("name: empty\ndescription: nothing\n", "env.yml")
    with pytest.raises(InvalidParameterValue, match=r"env\.yml:2: 'conda_file' .*file path"):
        envs.create("name: p\nconda_file: conda.yml\n", "env.yml")
    with pytest.raises(InvalidParameterValue, match=r"env\.yml:2: 'python' must be a quoted"):
        envs.create("name: p\npython: 3.10\npip: [six]\n", "env.yml")
    with pytest.raises(
        InvalidParameterValue, match="Docker build context: registering one is not supported"
    ):
        envs.create({"name": "d", "build": {"path": "."}})


def test_curated_are_listed_and_protected(envs: EnvironmentService) -> None:
    listed = {e.name: e for e in envs.list()}
    for name in ("lapis-minimal", "lapis-sklearn", "lapis-lightgbm"):
        assert listed[name].curated is True and listed[name].version == "1"
        requirements = listed[name].spec["requirements"]
        # every package pinned (the lock), the client at the server's MLflow version
        assert "mlflow-skinny==3.17.2" in requirements
        assert all("==" in r for r in requirements), requirements
        assert listed[name].spec["python"] is None  # the host's interpreter
    assert {"scikit-learn==1.5.2", "pandas==2.2.3", "skops==0.16.0"} <= set(
        listed["lapis-sklearn"].spec["requirements"]
    )
    assert "AzureML-sklearn-1.5" in listed["lapis-sklearn"].azure_names
    with pytest.raises(InvalidParameterValue, match="'lapis-sklearn' is curated"):
        envs.create({"name": "lapis-sklearn", "version": "2", "pip": ["six"]})
    with pytest.raises(InvalidParameterValue, match="curated"):
        envs.archive("lapis-minimal", "1")
    assert envs.versions("lapis-minimal")[0].curated is True
    with pytest.raises(ResourceDoesNotExist, match="no version '2'"):
        envs.get("lapis-minimal", "2")


def test_resolve_each_kind_of_reference(envs: EnvironmentService) -> None:
    system = envs.resolve(EnvironmentRef("system"))
    assert (system.kind, system.spec, system.label) == ("system", None, "system")

    image_only = envs.resolve(EnvironmentRef("inline", image="python:3.11-slim"))
    assert image_only.kind == "system" and image_only.image == "python:3.11-slim"

    inline = envs.resolve(EnvironmentRef("inline", conda_file={"dependencies": [{"pip": ["six"]}]}))
    assert inline.kind == "built" and inline.spec is not None
    assert inline.digest == from_requirements(["six"]).digest
    assert inline.label == f"inline {inline.digest[:8]}"
    as_text = envs.resolve(EnvironmentRef("inline", conda_file="dependencies:\n- pip:\n  - six\n"))
    assert as_text.digest == inline.digest

    envs.create({"name": "reg", "pip": ["six"]})
    envs.create({"name": "reg", "pip": ["six", "idna"]})
    latest = envs.resolve(EnvironmentRef("registered", name="reg", label="latest"))
    assert latest.label == "reg:2" and latest.spec is not None
    assert sorted(latest.spec.requirements) == ["idna", "six"]
    first = envs.resolve(EnvironmentRef("registered", name="reg", version="1"))
    assert first.label == "reg:1" and first.digest == inline.digest  # same content, same folder

    curated = envs.resolve(EnvironmentRef("registered", name="lapis-sklearn", version="1"))
    assert curated.kind == "built" and curated.label == "lapis-sklearn:1"

    envs.create({"name": "img", "image": "python:3.12"})
    img = envs.resolve(EnvironmentRef("registered", name="img", label="latest"))
    assert (img.kind, img.image, img.label) == ("system", "python:3.12", "img:1")


def test_unknown_environment_suggests_a_name(envs: EnvironmentService) -> None:
    with pytest.raises(ResourceDoesNotExist) as err:
        envs.resolve(EnvironmentRef("registered", name="lapis-sklern", label="latest"))
    assert "Environment 'lapis-sklern' does not exist" in err.value.message
    assert "did you mean 'lapis-sklearn'" in err.value.message
    envs.create({"name": "mine", "pip": ["six"]})
    with pytest.raises(ResourceDoesNotExist, match="no version '7'; versions: 1"):
        envs.resolve(EnvironmentRef("registered", name="mine", version="7"))
    with pytest.raises(InvalidParameterValue, match="only @latest"):
        envs.get("mine", label="stable")


def test_build_status_from_rows_and_ready_marker(envs: EnvironmentService) -> None:
    env = envs.create({"name": "st", "pip": ["six"]})
    digest = env.digest
    assert envs.build_status(digest) is None
    envs.record_build(digest, "Building")
    assert envs.get("st").build.status == "Building"
    envs.record_build(digest, "Failed", error="no such package")
    status = envs.build_status(digest)
    assert status is not None and status.status == "Failed"
    assert status.error == "no such package"
    assert status.log_path == str(envs.envs_root / f"{digest}.build.log")
    with pytest.raises(InvalidParameterValue):
        envs.record_build(digest, "Done")
    # A folder a job built (or one from before a restart) counts, row or not.
    other = from_requirements(["idna"]).digest
    (envs.envs_root / other).mkdir(parents=True)
    (envs.envs_root / other / READY).write_text("0")
    marked = envs.build_status(other)
    assert marked is not None and marked.status == "Succeeded"
    assert marked.path == str(envs.envs_root / other)


def test_build_log_missing_is_a_clear_404(envs: EnvironmentService) -> None:
    envs.create({"name": "nolog", "pip": ["six"]})
    with pytest.raises(ResourceDoesNotExist, match="has not been built"):
        envs.build_log("nolog", "1")


def test_failure_reason_reads_uv_output() -> None:
    log = (
        "$ uv pip install x\nUsing Python 3.11.7 environment at: /e\n"
        "error: No solution found when resolving dependencies\n"
        "  cause: Because x was not found in the package registry, it is unsatisfiable.\n"
    )
    assert failure_reason(log) == (
        "No solution found when resolving dependencies: "
        "Because x was not found in the package registry, it is unsatisfiable."
    )
    assert failure_reason("conda packages: cudatoolkit\n") == "conda packages: cudatoolkit"


def test_conda_only_packages_are_set_aside_by_name() -> None:
    spec = from_conda({"dependencies": ["cudatoolkit=11.8", "_libgcc_mutex", "numpy"]})
    assert spec.requirements == ("numpy",)
    assert spec.conda_only == ("cudatoolkit", "_libgcc_mutex")


@pytest.mark.timeout(300)
def test_build_records_success_and_cache_hit(
    envs: EnvironmentService, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    envs.create({"name": "b", "pip": ["six"], "python": HOST_PYTHON})
    first = envs.build("b", "1")
    assert first.status == "Succeeded" and first.cache_hit is False
    again = envs.build("b", "latest")
    assert again.cache_hit is True
    status = envs.get("b").build
    assert status.status == "Succeeded" and status.python.endswith("bin/python")
    assert "six" in envs.build_log("b", "1")


def test_azure_curated_names_resolve_to_their_stand_ins(envs: EnvironmentService) -> None:
    for name, version, label in (
        ("AzureML-sklearn-1.5", None, "latest"),
        ("AzureML-sklearn-1.0-ubuntu20.04-py38-cpu", "33", None),
        ("sklearn-1.5", None, "latest"),
    ):
        env = envs.get(name, version, label)
        assert env.name == "lapis-sklearn" and env.stands_in_for and name in env.stands_in_for
        assert env.note and "scikit-learn 1.5.2" in env.note
    assert envs.get("AzureML-minimal-ubuntu22.04-py39-cpu-inference", "7").name == "lapis-minimal"
    assert envs.get("sklearn-1.5", label="latest", registry="azureml").name == "lapis-sklearn"
    resolved = envs.resolve(
        EnvironmentRef("registered", name="AzureML-lightgbm-3.3", label="latest")
    )
    assert resolved.label == "lapis-lightgbm:1 (for AzureML-lightgbm-3.3@latest)"
    with pytest.raises(ResourceDoesNotExist, match="no stand-in here: no PyTorch"):
        envs.get("AzureML-acpt-pytorch-2.2-cuda12.1", label="latest")
    with pytest.raises(ResourceDoesNotExist, match="only Azure's public registry"):
        envs.get("sklearn-1.5", registry="my-team")
    with pytest.raises(ResourceDoesNotExist, match=r"did you mean 'AzureML-sklearn-1\.5'"):
        envs.get("AzureML-sklern-1.5")
    # a workspace's own environment of an Azure-looking name wins over the stand-in
    envs.create({"name": "sklearn-1.5", "pip": ["six"]})
    assert envs.get("sklearn-1.5").name == "sklearn-1.5"
