"""Datastore documents in Azure's shapes (tests/compat/files/datastore) and Lapis' own
(s3, local): settings and credentials split apart, each mistake refused naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lapis.data.datastores import url_of
from lapis.errors import InvalidParameterValue
from lapis.specs.datastore import parse_datastore
from lapis.specs.yaml_lines import load

FILES = Path(__file__).resolve().parents[1] / "compat" / "files" / "datastore"


def _file(name: str) -> Any:
    path = FILES / name
    return parse_datastore(load(path.read_text(), str(path)), str(path))


def test_azure_files_load_with_their_credentials_apart() -> None:
    blob = _file("blob-key.yml")
    assert (blob.type, blob.credential_kind) == ("azure_blob", "account_key")
    assert blob.settings == {
        "account_name": "lapisteststore",
        "container_name": "training-data",
        "protocol": "https",
        "endpoint": "core.windows.net",
    }
    assert set(blob.credentials) == {"account_key"}
    assert (
        url_of(blob.type, blob.settings)
        == "https://lapisteststore.blob.core.windows.net/training-data"
    )
    sas = _file("blob-sas-wasbs.yml")
    assert sas.credential_kind == "sas_token"
    assert (
        url_of(sas.type, sas.settings)
        == "wasbs://training-data@lapisteststore.blob.core.windows.net"
    )
    lake = _file("adls-gen2-sp.yml")
    assert lake.credential_kind == "service_principal" and len(lake.credentials) == 3
    assert url_of(lake.type, lake.settings) == "https://lapistestlake.dfs.core.windows.net/curated"
    share = _file("file-share.yml")
    assert (share.credential_kind, share.credentials) == ("none", {})
    assert url_of(share.type, share.settings) == "https://lapisteststore.file.core.windows.net/team"


def test_lapis_own_types_and_account_url() -> None:
    keys = {"access_key_id": "a", "secret_access_key": "b"}
    s3 = parse_datastore(
        {"name": "raw", "type": "s3", "bucket": "raw-data", "credentials": keys,
         "endpoint_url": "http://127.0.0.1:9000"}
    )  # fmt: skip
    assert (s3.credential_kind, url_of(s3.type, s3.settings)) == ("access_key", "s3://raw-data")
    azurite = "http://127.0.0.1:10000/devstoreaccount1"
    dev = parse_datastore(
        {"name": "dev", "type": "azure_blob", "account_name": "devstoreaccount1",
         "container_name": "c", "account_url": azurite}
    )  # fmt: skip
    assert url_of(dev.type, dev.settings) == f"{azurite}/c"
    local = parse_datastore({"name": "scratch", "type": "local", "path": "/srv/data"})
    assert url_of(local.type, local.settings) == "file:///srv/data"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"type": "azure_blob", "account_name": "a", "container_name": "c"}, "'name' must start"),
        ({"name": "x", "type": "azure_blob", "container_name": "c"}, "'account_name' is required"),
        ({"name": "x", "type": "blob"}, "must be one of"),
        ({"name": "x", "type": "azure_data_lake_gen1", "store_name": "s"}, "retired"),
        (
            {
                "name": "x",
                "type": "azure_blob",
                "account_name": "a",
                "container_name": "c",
                "filesystem": "f",
            },
            "'filesystem' is not a setting of a azure_blob",
        ),
        (
            {
                "name": "x",
                "type": "azure_blob",
                "account_name": "a",
                "container_name": "c",
                "protocol": "abfss",
            },
            "must be https or wasbs",
        ),
        (
            {
                "name": "x",
                "type": "azure_blob",
                "account_name": "a",
                "container_name": "c",
                "credentials": {"acount_key": "k"},
            },
            "did you mean 'account_key'",
        ),
        (
            {
                "name": "x",
                "type": "azure_blob",
                "account_name": "a",
                "container_name": "c",
                "credentials": {"tenant_id": "t", "client_id": "c"},
            },
            "must give account_key",
        ),
        (
            {
                "name": "x",
                "type": "azure_blob",
                "account_name": "a",
                "container_name": "c",
                "credentials": {"account_key": "k", "sas_token": "s"},
            },
            "does not go with",
        ),
        (
            {
                "name": "x",
                "type": "azure_file",
                "account_name": "a",
                "file_share_name": "s",
                "credentials": {"tenant_id": "t", "client_id": "c", "client_secret": "s"},
            },
            "is not a credential of a azure_file",
        ),
        ({"name": "x", "type": "local", "path": "data"}, "must be an absolute folder"),
        ({"name": "x", "type": "local", "path": "/d", "credentials": {"k": "v"}}, "takes no"),
        ({"name": "x", "type": "s3", "bucket": "b", "endpoint_url": "ftp://h"}, "http:// or"),
    ],
)
def test_a_wrong_datastore_is_refused_naming_the_key(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameterValue) as refused:
        parse_datastore(doc)
    assert message in str(refused.value), str(refused.value)


def test_a_retired_type_in_a_file_names_its_line() -> None:
    with pytest.raises(InvalidParameterValue) as refused:
        _file("adls-gen1.yml")
    assert "adls-gen1.yml:3" in str(refused.value) and "Gen1" in str(refused.value)
