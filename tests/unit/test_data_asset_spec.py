"""Data-asset files in Azure's shapes (tests/compat/files/data) and every data URI a job
or an asset may name, classified; each mistake refused naming the key and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lapis.errors import InvalidParameterValue
from lapis.specs.data_asset import parse_data_asset, parse_data_uri
from lapis.specs.yaml_lines import load

FILES = Path(__file__).resolve().parents[1] / "compat" / "files" / "data"


def _file(name: str) -> Any:
    path = FILES / name
    return parse_data_asset(load(path.read_text(), str(path)), str(path))


def test_azure_files_load() -> None:
    local = _file("local-folder.yml")
    assert (local.name, local.type, local.version) == ("heart-dataset", "uri_folder", None)
    assert local.uri is not None and (local.uri.kind, local.uri.path) == ("local", "./heart")
    assert local.tags == {"source": "uci"}
    on_ds = _file("datastore-file.yml")
    assert on_ds.version == "1" and on_ds.type == "uri_file" and on_ds.uri is not None
    assert (on_ds.uri.kind, on_ds.uri.datastore, on_ds.uri.path) == (
        "datastore", "training_blob", "datasets/iris.csv",
    )  # fmt: skip
    wasbs = _file("wasbs-folder.yml")
    assert wasbs.uri is not None and (wasbs.uri.kind, wasbs.uri.scheme) == ("url", "wasbs")
    table = _file("long-azureml.yml")
    assert table.type == "mltable" and table.uri is not None
    assert (table.uri.datastore, table.uri.path) == ("workspaceblobstore", "titanic")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("azureml://datastores/ds/paths/a/b/",
         {"kind": "datastore", "datastore": "ds", "path": "a/b"}),
        ("azureml://jobs/brave_fox/outputs/model", {"kind": "job_output", "job": "brave_fox",
                                                      "output": "model", "path": ""}),
        ("azureml://jobs/j/outputs/artifacts/outputs/m",
         {"kind": "job_output", "output": "artifacts", "path": "outputs/m"}),
        ("azureml:heart-dataset:3", {"kind": "asset", "name": "heart-dataset", "version": "3"}),
        ("azureml:heart-dataset@latest", {"kind": "asset", "label": "latest", "version": None}),
        ("abfss://fs@acct.dfs.core.windows.net/x", {"kind": "url", "scheme": "abfss"}),
        ("s3://bucket/key", {"kind": "url", "scheme": "s3"}),
        ("https://example.org/iris.csv", {"kind": "url", "scheme": "https"}),
        ("/data/iris.csv", {"kind": "local", "path": "/data/iris.csv"}),
    ],
)  # fmt: skip
def test_data_uris_are_classified(text: str, expected: dict[str, Any]) -> None:
    uri = parse_data_uri(text)
    for key, value in expected.items():
        assert getattr(uri, key) == value, (key, uri)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"name": "x", "path": "gs://bucket/x"}, "the gs:// scheme is not supported"),
        ({"name": "x", "path": "azureml://registries/r/data/x"}, "not an azureml:// path"),
        ({"name": "x", "path": "azureml:other:1"}, "names another data asset"),
        ({"name": "x"}, "'path' is required"),
        ({"name": "-x", "path": "p"}, "'name' must start"),
        ({"name": "x", "path": "p", "type": "uri_table"}, "must be one of uri_file"),
        ({"name": "x", "path": "p", "version": "latest"}, "(not 'latest')"),
        ({"name": "x", "path": "p", "versoin": 2}, "did you mean 'version'"),
        ({"name": "x", "path": "s3://b/k", "datastore": "azureml:ds"}, "not a URI"),
    ],
)
def test_a_wrong_asset_is_refused_naming_the_key(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameterValue) as refused:
        parse_data_asset(doc)
    assert message in str(refused.value), str(refused.value)


def test_a_data_import_file_is_one_line_naming_its_line() -> None:
    with pytest.raises(InvalidParameterValue) as refused:
        _file("sql-import.yml")
    assert "sql-import.yml:5" in str(refused.value) and "import" in str(refused.value)
