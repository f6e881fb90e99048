"""``client.models`` against a real server: register, look up, archive, download."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lapis import MLClient, Model
from lapis.errors import InvalidParameterValue, ResourceDoesNotExist


@pytest.fixture
def client(lapis_server: Any) -> Iterator[MLClient]:
    with MLClient(lapis_server.url, lapis_server.token) as ml:
        yield ml


def test_register_folder_then_version_lookup_archive_download(
    client: MLClient, tmp_path: Path
) -> None:
    name = f"sdk-model-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "m"
    (folder / "sub").mkdir(parents=True)
    weights = os.urandom(4096)
    (folder / "weights.bin").write_bytes(weights)
    (folder / "sub" / "meta.txt").write_text("v1")
    first = client.models.create_or_update(
        Model(name=name, path=folder, description="first", tags={"stage": "dev"})
    )
    assert first["version"] in (1, "1") and first["tags"]["stage"] == "dev"
    second = client.models.create_or_update(Model(name=name, path=folder / "weights.bin"))
    assert str(second["version"]) == "2"
    assert str(client.models.get(name)["version"]) == "2"  # latest
    shown = client.models.get(name, version="1")
    assert shown["description"] == "first" and "lineage" in shown
    assert [str(m["version"]) for m in client.models.list(name=name)] == ["2", "1"]

    client.models.archive(name, "2")
    assert [str(m["version"]) for m in client.models.list(name=name)] == ["1"]
    assert len(client.models.list(name=name, include_archived=True)) == 2
    client.models.restore(name, "2")

    written = client.models.download(name, "1", tmp_path / "dl")
    assert (tmp_path / "dl" / name / "weights.bin").read_bytes() == weights
    assert (tmp_path / "dl" / name / "sub" / "meta.txt").read_text() == "v1"
    assert len(written) == 2


def test_bad_models_are_refused_clearly(client: MLClient, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterValue, match="does not exist"):
        client.models.create_or_update(Model(name="x-missing", path=tmp_path / "nope"))
    with pytest.raises(InvalidParameterValue, match="type must be one of"):
        client.models.create_or_update(Model(name="x", path=tmp_path, type="onnx"))
    with pytest.raises(ResourceDoesNotExist):
        client.models.get(f"never-{uuid.uuid4().hex[:6]}", version="1")
