"""Datastores on real storage services on loopback — Azurite for Azure Blob, moto's
server for S3, a local folder — browsed through the CLI with their own credentials
(account key, SAS, access keys); a wrong key or a missing bucket is one line with the
service's reason; a Reader may see a datastore but not read its files."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from clusterkit import (
    json_cli,
    one_store,  # noqa: F401  (the module's lapis_server: SQLite)
)
from jobkit import lapis_cli
from storagekit import ACCOUNT, ACCOUNT_KEY, azurite_server, moto_s3_server  # noqa: F401  (fixtures)

FILES = {"images/cat.png": b"\x89PNG" + b"0" * 96, "labels.csv": b"file,label\ncat.png,cat\n"}


def _create(server: Any, tmp_path: Path, text: str) -> dict[str, Any]:
    spec = tmp_path / f"ds-{uuid.uuid4().hex[:6]}.yml"
    spec.write_text(text)
    made: dict[str, Any] = json_cli(server, "datastore", "create", "-f", str(spec))
    return made


def _browsed(server: Any, name: str, path: str = "") -> dict[str, Any]:
    entries = json_cli(server, "datastore", "browse", "-n", name, "--path", path)
    return {e["path"]: e for e in entries}


def _fill(fs: Any, root: str) -> None:
    fs.mkdir(root)
    for path, data in FILES.items():
        fs.pipe(f"{root}/{path}", data)


def test_an_azure_blob_container_on_azurite_with_a_key_and_a_sas(
    lapis_server: Any, azurite: str, tmp_path: Path
) -> None:
    import adlfs
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    container = f"training-{uuid.uuid4().hex[:6]}"
    conn = f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};" \
           f"BlobEndpoint={azurite};"  # fmt: skip
    _fill(adlfs.AzureBlobFileSystem(connection_string=conn), container)
    name = f"blob_{uuid.uuid4().hex[:6]}"
    base = (f"name: {name}\ntype: azure_blob\naccount_name: {ACCOUNT}\n"
            f"container_name: {container}\naccount_url: {azurite}\n")  # fmt: skip
    made = _create(lapis_server, tmp_path, base + f"credentials:\n  account_key: {ACCOUNT_KEY}\n")
    assert made["url"] == f"{azurite}/{container}"
    top = _browsed(lapis_server, name)
    assert top["images"]["is_dir"] and top["labels.csv"]["size"] == len(FILES["labels.csv"])
    inner = _browsed(lapis_server, name, "images")
    assert inner["images/cat.png"]["size"] == len(FILES["images/cat.png"])
    shown = lapis_cli(lapis_server, "datastore", "browse", name)
    assert shown.returncode == 0 and "labels.csv" in shown.stdout and "folder" in shown.stdout

    sas = generate_container_sas(ACCOUNT, container, account_key=ACCOUNT_KEY,
                                 permission=ContainerSasPermissions(read=True, list=True),
                                 expiry=datetime.now(UTC) + timedelta(hours=1))  # fmt: skip
    _create(lapis_server, tmp_path, base + f"credentials:\n  sas_token: '?{sas}'\n")
    assert set(_browsed(lapis_server, name)) == {"images", "labels.csv"}

    wrong = ACCOUNT_KEY[:-8] + "AAAAAAA="  # the same shape, not the key
    _create(lapis_server, tmp_path, base + f"credentials:\n  account_key: {wrong}\n")
    refused = lapis_cli(lapis_server, "datastore", "browse", "-n", name)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert f"datastore '{name}' refused the listing" in refused.stderr, refused.stderr
    assert "AuthorizationFailure: Server failed to authenticate" in refused.stderr, refused.stderr
    assert "<?xml" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    escape = lapis_cli(lapis_server, "datastore", "browse", "-n", name, "--path", "../x")
    assert (escape.returncode != 0 and "'..'" in escape.stderr) or "outside" in escape.stderr


def test_an_s3_bucket_on_moto(lapis_server: Any, moto_s3: str, tmp_path: Path) -> None:
    import s3fs

    bucket = f"raw-{uuid.uuid4().hex[:6]}"
    fs = s3fs.S3FileSystem(key="id", secret="secret", client_kwargs={"endpoint_url": moto_s3})
    _fill(fs, bucket)
    name = f"s3_{uuid.uuid4().hex[:6]}"
    creds = "credentials:\n  access_key_id: id\n  secret_access_key: secret\n"
    made = _create(lapis_server, tmp_path, f"name: {name}\ntype: s3\nbucket: {bucket}\n"
                   f"endpoint_url: {moto_s3}\n{creds}")  # fmt: skip
    assert made["url"] == f"s3://{bucket}" and made["credential_kind"] == "access_key"
    assert _browsed(lapis_server, name, "images") == {
        "images/cat.png": {"path": "images/cat.png", "is_dir": False, "size": 100}
    }
    missing = f"s3_{uuid.uuid4().hex[:6]}"
    nowhere = f"no-such-{uuid.uuid4().hex[:6]}"
    _create(lapis_server, tmp_path, f"name: {missing}\ntype: s3\nbucket: {nowhere}\n"
            f"endpoint_url: {moto_s3}\n{creds}")  # fmt: skip
    said = lapis_cli(lapis_server, "datastore", "browse", "-n", missing)
    assert said.returncode != 0 and "Traceback" not in said.stderr
    assert (
        "NoSuchBucket" in said.stderr
        or "does not exist" in said.stderr
        or "has no folder" in said.stderr
    ), said.stderr


def test_a_reader_sees_a_datastore_but_cannot_read_its_files(
    lapis_server: Any, moto_s3: str, tmp_path: Path
) -> None:
    name = f"s3_{uuid.uuid4().hex[:6]}"
    _create(lapis_server, tmp_path, f"name: {name}\ntype: s3\nbucket: b\nendpoint_url: {moto_s3}\n")
    reader = f"ds-reader-{uuid.uuid4().hex[:6]}"
    with lapis_server.client() as admin:
        admin.post("/api/v1/users", json={"name": reader, "roles": ["Reader"]})
        token = admin.post("/api/v1/tokens", json={"name": "t", "user": reader}).json()["token"]
        assert admin.get("/api/v1/datastores/workspaceblobstore/browse").json()["entries"] == []
    with httpx.Client(
        base_url=lapis_server.url, headers={"Authorization": f"Bearer {token}"}
    ) as me:
        assert me.get(f"/api/v1/datastores/{name}").status_code == 200
        refused = me.get(f"/api/v1/datastores/{name}/browse")
        assert refused.status_code == 403 and "listsecrets" in refused.text.lower()
