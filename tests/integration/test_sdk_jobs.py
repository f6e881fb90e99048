"""``MLClient`` (jobs, compute, environments) against a real ``lapis server`` process."""

from __future__ import annotations

import hashlib
import io
import os
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from lapis import Input, MLClient, Output, command
from lapis.errors import InvalidParameterValue, ResourceDoesNotExist


class Server(Protocol):
    """What the shared ``lapis_server`` fixture (tests/conftest.py) gives: a running server."""

    url: str
    token: str
    home: Path
    env: dict[str, str]


TRAIN = """\
import os, sys
import mlflow

lr, data_file, out_dir = sys.argv[1:4]
with mlflow.start_run():
    mlflow.log_param("lr", lr)
    mlflow.log_metric("rows", len(open(data_file).read().splitlines()))
payload = os.urandom(2048) + open(data_file, "rb").read()
with open(os.path.join(out_dir, "model.bin"), "wb") as fh:
    fh.write(payload)
print("sdk job trained with lr", lr)
import hashlib
print("sha256", hashlib.sha256(payload).hexdigest())
"""


@pytest.fixture
def client(lapis_server: Server) -> Iterator[MLClient]:
    with MLClient(lapis_server.url, lapis_server.token) as ml:
        yield ml


def test_command_job_round_trip(
    client: MLClient, lapis_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text(TRAIN)
    (tmp_path / "data.csv").write_text("a,b\n1,2\n3,4\n")
    monkeypatch.chdir(tmp_path)  # code and input paths are relative to the caller's folder
    job = command(
        code="./src",
        command="python train.py ${{inputs.lr}} ${{inputs.data}} ${{outputs.model}}",
        inputs={"lr": 0.1, "data": Input(type="uri_file", path="./data.csv")},
        outputs={"model": Output(type="uri_folder")},
        environment="system",
        compute="local",
        experiment_name="sdk-jobs",
        display_name="sdk-train",
        tags={"team": "sdk"},
        environment_variables={"SDK_FLAG": "1"},
        timeout=120,
    )
    returned = client.jobs.create_or_update(job)
    assert returned.name and returned.compute == "local"
    assert returned.status in {"Queued", "Preparing", "Starting", "Running"}
    assert returned.display_name == "sdk-train" and returned.raw["timeout_seconds"] == 120

    log = io.StringIO()
    final = client.jobs.stream(returned.name, out=log)
    assert final.status == "Completed", (final.status_reason, log.getvalue())
    assert "sdk job trained with lr 0.1" in log.getvalue()
    assert "[Completed]" in log.getvalue()
    assert final.run_id == returned.run_id and final.exit_code == 0

    got = client.jobs.get(returned.name)
    assert got.status == "Completed" and got.tags == {"team": "sdk"}
    assert got.experiment_name == "sdk-jobs" and got.terminal
    assert got.environment_variables == {"SDK_FLAG": "1"}  # from raw, by attribute
    listed = client.jobs.list(compute="local", max_results=200)
    assert returned.name in [j.name for j in listed]
    assert returned.name in [j.name for j in client.jobs.list(status="Completed")]

    target = tmp_path / "download"
    written = client.jobs.download(returned.name, download_path=target, output_name="model")
    model = target / "named-outputs" / "model" / "model.bin"
    assert written == [model]
    with lapis_server.client() as c:
        log = c.get(f"/api/v1/jobs/{returned.name}/logs").json()["data"]
    assert hashlib.sha256(model.read_bytes()).hexdigest() == log.split("sha256 ", 1)[1].split()[0]
    assert model.read_bytes().endswith(b"a,b\n1,2\n3,4\n")
    with pytest.raises(ResourceDoesNotExist, match="no output named 'nope'"):
        client.jobs.download(returned.name, download_path=target, output_name="nope")

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", lapis_server.token)
    run = mlflow.MlflowClient(tracking_uri=lapis_server.url).get_run(final.run_id)
    assert run.data.params["lr"] == "0.1"
    assert run.data.metrics["rows"] == 3
    assert run.data.tags["lapis.job.name"] == returned.name


def test_bad_job_names_the_line(
    client: MLClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    job = command(command="echo ${{inputs.x}}", inputs={"y": 1}, environment="system")
    with pytest.raises(InvalidParameterValue) as info:
        client.jobs.create_or_update(job)
    message = str(info.value)
    assert "line" in message and "<sdk>" in message and "inputs.x" in message


def test_yaml_file_path_and_cancel(client: MLClient, tmp_path: Path) -> None:
    job_file = tmp_path / "job.yml"
    job_file.write_text(
        textwrap.dedent(
            """\
            command: python -c "print('hello from ${{inputs.who}}')"
            inputs:
              who: yaml
            environment: system
            """
        )
    )
    done = client.jobs.stream(
        client.jobs.create_or_update(str(job_file), experiment_name="sdk-yaml"),
        out=io.StringIO(),
    )
    assert done.status == "Completed", done.status_reason
    assert done.experiment_name == "sdk-yaml"

    slow = client.jobs.create_or_update(
        command(command='python -c "import time; time.sleep(60)"', environment="system")
    )
    canceled = client.jobs.cancel(slow)
    assert canceled.status in {"Canceled", "CancelRequested"}
    deadline = time.monotonic() + 30
    while not client.jobs.get(slow.name).terminal:
        assert time.monotonic() < deadline, "cancelled job did not end"
        time.sleep(0.2)
    assert client.jobs.get(slow.name).status == "Canceled"


def test_compute_lifecycle(client: MLClient) -> None:
    name = f"sdk-x{uuid.uuid4().hex[:7]}"  # a letter after the "-" (Azure's rule)
    created = client.compute.create_or_update(
        {"name": name, "type": "computeinstance", "size": "Standard_DS1_v2"}, wait=True
    )
    assert created.name == name and created.size == "Standard_DS1_v2"
    assert created.state == "Running", created.state_reason
    assert client.compute.get(name).cores == 1
    assert name in [c.name for c in client.compute.list()]
    updated = client.compute.create_or_update(
        {"name": name, "type": "computeinstance", "description": "from the SDK"}
    )
    assert updated.description == "from the SDK"
    stopped = client.compute.stop(name, wait=True)
    assert stopped.state == "Stopped"
    assert client.compute.delete(name) == {"name": name, "deleted": True}
    with pytest.raises(ResourceDoesNotExist):
        client.compute.get(name)
    sizes = {s["name"] for s in client.compute.list_sizes()}
    assert "Standard_DS1_v2" in sizes


def test_compute_from_yaml_file_names_the_line(client: MLClient, tmp_path: Path) -> None:
    spec = tmp_path / "compute.yml"
    spec.write_text("name: sdk-typo\ntype: computeinstance\nsise: Standard_DS1_v2\n")
    with pytest.raises(InvalidParameterValue, match=r"compute.yml:3"):
        client.compute.create_or_update(spec)


def test_environments(client: MLClient, tmp_path: Path) -> None:
    name = f"sdk-env-{uuid.uuid4().hex[:6]}"
    (tmp_path / "conda.yml").write_text("dependencies:\n  - pip:\n    - six==1.16.0\n")
    env_file = tmp_path / "env.yml"
    env_file.write_text(f"name: {name}\nconda_file: conda.yml\n")
    first = client.environments.create_or_update(env_file)
    assert (first.name, first.version) == (name, "1")
    second = client.environments.create_or_update(
        {"name": name, "conda_file": {"dependencies": [{"pip": ["six==1.17.0"]}]}}
    )
    assert second.version == "2"
    assert client.environments.get(name).version == "2"
    assert client.environments.get(name, label="latest").version == "2"
    assert client.environments.get(name, version="1").version == "1"
    assert name in [e.name for e in client.environments.list()]
    assert [e.version for e in client.environments.list(name)] == ["2", "1"]


def test_from_home(lapis_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("LAPIS_URL", "LAPIS_TOKEN", "LAPIS_HOME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", os.devnull)  # nothing may come from ~/.lapis
    with MLClient.from_home(home=lapis_server.home) as ml:
        assert ml.url == lapis_server.url
        assert ml.compute.get("local").type == "local"
