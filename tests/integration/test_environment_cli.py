"""``lapis environment …`` against a real server: register from YAML, real uv builds, failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Protocol

import pytest

from lapis.sdk.connection import LapisHTTP


class ServerProcess(Protocol):
    """What the shared ``lapis_server`` fixture (tests/conftest.py) gives: a running server."""

    url: str
    token: str
    home: Path
    env: dict[str, str]


LAPIS = str(Path(sys.executable).parent / "lapis")

pytestmark = pytest.mark.timeout(600)


def cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LAPIS_", "MLFLOW_"))}
    return subprocess.run(
        [LAPIS, *args],
        env={**base, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ok_json(*args: str, env: dict[str, str]) -> Any:
    proc = cli(*args, "-o", "json", env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def write_env(folder: Path, name: str, pip: list[str], conda_extra: str = "") -> Path:
    """``env.yml`` naming ``conda.yml`` by a relative path, as Azure examples do."""
    folder.mkdir(parents=True, exist_ok=True)
    deps = "".join(f"      - {p}\n" for p in pip)
    (folder / "conda.yml").write_text(
        f"name: {name}\nchannels: [conda-forge]\ndependencies:\n{conda_extra}"
        f"  - pip\n  - pip:\n{deps}"
    )
    (folder / "env.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json\n"
        f"name: {name}\n"
        "image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest\n"
        "conda_file: conda.yml\n"
        "description: integration test\n"
    )
    return folder / "env.yml"


def test_create_build_and_cache_hit(lapis_server: ServerProcess, tmp_path: Path) -> None:
    env = lapis_server.env
    path = write_env(tmp_path / "six", "cli-six", ["six"])
    created = ok_json("environment", "create", "-f", str(path), env=env)
    assert (created["name"], created["version"]) == ("cli-six", "1")
    assert created["spec"]["requirements"] == ["six"] and "six" in created["conda_file"]
    assert created["image"].startswith("mcr.microsoft.com/")
    again = ok_json("environment", "create", "-f", str(path), env=env)
    assert again["version"] == "2" and again["digest"] == created["digest"]

    built = ok_json("environment", "build", "cli-six:1", env=env)
    assert built["status"] == "Succeeded" and built["digest"] == created["digest"]
    check = subprocess.run(
        [built["python"], "-c", "import six; print(six.__name__)"], capture_output=True, text=True
    )
    assert check.stdout.strip() == "six", check.stderr

    started = time.monotonic()
    human = cli("environment", "build", "cli-six@latest", env=env)  # version 2: same content
    assert human.returncode == 0, human.stderr
    assert "cache hit" in human.stdout and time.monotonic() - started < 15

    shown = ok_json("environment", "show", "cli-six:1", env=env)
    assert shown["build"]["status"] == "Succeeded"
    table = cli("environment", "show", "cli-six", env=env)
    assert table.returncode == 0
    for text in ("cli-six:2", "Succeeded", created["digest"], "six"):
        assert text in table.stdout
    log = cli("environment", "build-log", "cli-six:1", env=env)
    assert log.returncode == 0 and "six" in log.stdout


def test_list_versions_and_curated(lapis_server: ServerProcess, tmp_path: Path) -> None:
    env = lapis_server.env
    path = write_env(tmp_path / "lv", "cli-listed", ["idna"])
    ok_json("environment", "create", "-f", str(path), "--version", "7", env=env)
    listed = {e["name"]: e for e in ok_json("environment", "list", env=env)}
    assert listed["cli-listed"]["version"] == "7"
    assert listed["lapis-minimal"]["curated"] and listed["lapis-sklearn"]["curated"]
    table = cli("environment", "list", env=env)
    assert table.returncode == 0 and "(curated)" in table.stdout and "cli-listed" in table.stdout
    named = ok_json("environment", "create", "-f", str(path), "--name", "cli-other", env=env)
    assert (named["name"], named["version"]) == ("cli-other", "1")
    versions = ok_json("environment", "versions", "cli-listed", env=env)
    assert [v["version"] for v in versions] == ["7"]
    one_line_error(
        cli("environment", "create", "-f", str(path), "--name", "lapis-sklearn", env=env),
        "curated",
    )
    one_line_error(
        cli("environment", "create", "-f", str(path), "--version", "7", env=env),
        "already exists",
    )
    one_line_error(cli("environment", "show", "cli-listd", env=env), "did you mean 'cli-listed'")


def test_bad_documents_name_the_line(lapis_server: ServerProcess, tmp_path: Path) -> None:
    env = lapis_server.env
    bad = tmp_path / "bad.yml"
    bad.write_text("name: bad\nimage: python:3.11\ncondafile: conda.yml\n")
    one_line_error(cli("environment", "create", "-f", str(bad), env=env), "bad.yml:3", "condafile")
    missing = tmp_path / "missing.yml"
    missing.write_text("name: miss\nconda_file: nowhere.yml\n")
    one_line_error(
        cli("environment", "create", "-f", str(missing), env=env), "missing.yml:2", "not found"
    )


def test_missing_package_fails_with_the_build_log(
    lapis_server: ServerProcess, tmp_path: Path
) -> None:
    env = lapis_server.env
    pkg = "lapis-test-no-such-package-7c1e"
    path = write_env(tmp_path / "missing", "cli-broken", [pkg])
    ok_json("environment", "create", "-f", str(path), env=env)
    line = one_line_error(
        cli("environment", "build", "cli-broken:1", env=env), pkg, "build log:", ".build.log"
    )
    assert "cli-broken:1 failed" in line
    shown = ok_json("environment", "show", "cli-broken:1", env=env)
    assert shown["build"]["status"] == "Failed" and pkg in shown["build"]["error"]
    log = cli("environment", "build-log", "cli-broken:1", env=env)
    assert log.returncode == 0 and pkg in log.stdout
    with LapisHTTP(lapis_server.url, lapis_server.token) as api:
        resp = api._client.post("/api/v1/environments/cli-broken/versions/1/build")
    assert resp.status_code == 400
    body = resp.json()
    assert body["error_code"] == "ENVIRONMENT_BUILD_FAILED"
    assert pkg in body["message"] and "\n" in body["message"]  # the log tail comes along


def test_conda_only_package_and_missing_python(lapis_server: ServerProcess, tmp_path: Path) -> None:
    env = lapis_server.env
    conda = write_env(tmp_path / "conda", "cli-conda", ["six"], conda_extra="  - libgcc-ng\n")
    ok_json("environment", "create", "-f", str(conda), env=env)
    one_line_error(
        cli("environment", "build", "cli-conda:1", env=env),
        "no PyPI equivalent",
        "libgcc-ng",
        "build log:",
    )
    py = write_env(tmp_path / "py", "cli-py", ["six"], conda_extra="  - python=3.99\n")
    ok_json("environment", "create", "-f", str(py), env=env)
    one_line_error(
        cli("environment", "build", "cli-py:1", env=env),
        "Python 3.99 is not installed on this host; available: ",
    )


def test_build_log_of_unbuilt_version_is_404(lapis_server: ServerProcess, tmp_path: Path) -> None:
    env = lapis_server.env
    path = write_env(tmp_path / "unbuilt", "cli-unbuilt", ["idna"])
    ok_json("environment", "create", "-f", str(path), env=env)
    with LapisHTTP(lapis_server.url, lapis_server.token) as api:
        resp = api._client.get("/api/v1/environments/cli-unbuilt/versions/1/build-log")
    assert resp.status_code == 404
    assert "has not been built" in resp.json()["message"]
    one_line_error(cli("environment", "build-log", "cli-unbuilt", env=env), "has not been built")
