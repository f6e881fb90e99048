"""Datastores through the CLI and the API, on both metadata stores: Azure's files as
they are, credentials sealed at rest and never shown, ``listSecrets`` only for roles
that allow it, the workspace's own two, and mistakes named with their line."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from clusterkit import json_cli
from jobkit import lapis_cli, log_text, submit, wait, write_job

FILES = Path(__file__).resolve().parents[1] / "compat" / "files" / "datastore"
KEY = "bGFwaXMtdGVzdC1hY2NvdW50LWtleS1ub3QtYS1yZWFsLW9uZQ=="  # in blob-key.yml


def _stored(server: Any, name: str) -> str:
    """The credentials column of the datastore's row, read straight from the database."""
    url = server.database_url or f"sqlite:///{server.home / 'lapis.db'}"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa.text("SELECT credentials FROM datastores WHERE name = :n"), {"n": name}
            ).scalar_one()
    finally:
        engine.dispose()
    return str(found)


def _as(server: Any, role: str) -> httpx.Client:
    name = f"ds-{role.split()[-1].lower()}-{uuid.uuid4().hex[:6]}"
    with server.client() as admin:
        assert admin.post("/api/v1/users", json={"name": name, "roles": [role]}).status_code < 300
        token = admin.post("/api/v1/tokens", json={"name": "t", "user": name}).json()["token"]
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def test_an_azure_blob_datastore_keeps_its_key_sealed_and_unshown(
    lapis_server: Any, tmp_path: Path
) -> None:
    name = f"blob_{uuid.uuid4().hex[:6]}"
    spec = tmp_path / "blob.yml"
    spec.write_text((FILES / "blob-key.yml").read_text().replace("training_blob", name))
    made = json_cli(lapis_server, "datastore", "create", "-f", str(spec))
    assert (made["type"], made["credential_kind"], made["has_credentials"]) == (
        "azure_blob", "account_key", True,
    )  # fmt: skip
    assert made["url"] == "https://lapisteststore.blob.core.windows.net/training-data"
    shown = lapis_cli(lapis_server, "datastore", "show", "-n", name)
    assert shown.returncode == 0 and "account key (kept sealed; never shown)" in shown.stdout
    listed = lapis_cli(lapis_server, "datastore", "list", "-o", "json").stdout
    assert KEY not in shown.stdout + listed + str(made)
    names = [d["name"] for d in json_cli(lapis_server, "datastore", "list")]
    assert names[:2] == ["workspaceblobstore", "workspaceartifactstore"] and name in names
    stored = _stored(lapis_server, name)  # sealed with the workspace key, not in the row
    assert stored.startswith("sealed:v1:") and KEY not in stored

    # Azure's create on an existing name gives it new settings: a SAS instead of the key
    sas = tmp_path / "sas.yml"
    sas.write_text((FILES / "blob-sas-wasbs.yml").read_text().replace("training_blob", name))
    again = json_cli(lapis_server, "datastore", "create", "-f", str(sas))
    assert again["credential_kind"] == "sas_token" and again["created_at"] == made["created_at"]
    assert again["url"].startswith("wasbs://training-data@")

    with lapis_server.client() as admin:  # the Owner may read it back
        opened = admin.post(f"/api/v1/datastores/{name}/listSecrets").json()
    assert opened["secrets"]["sas_token"].startswith("?sv=")
    with _as(lapis_server, "Reader") as reader:  # a Reader sees the datastore, not its SAS
        assert reader.get(f"/api/v1/datastores/{name}").status_code == 200
        refused = reader.post(f"/api/v1/datastores/{name}/listSecrets")
        assert refused.status_code == 403, refused.text
        assert "listsecrets" in refused.text.lower()
        assert reader.delete(f"/api/v1/datastores/{name}").status_code == 403
    with _as(lapis_server, "AzureML Data Scientist") as scientist:
        assert scientist.post(f"/api/v1/datastores/{name}/listSecrets").status_code == 200

    done = lapis_cli(lapis_server, "datastore", "delete", "-n", name, "--yes")
    assert done.returncode == 0, done.stderr
    gone = lapis_cli(lapis_server, "datastore", "show", "-n", name)
    assert gone.returncode != 0 and "not found" in gone.stderr and "Traceback" not in gone.stderr


def test_every_azure_shape_loads_and_the_workspace_stores_stay(lapis_server: Any) -> None:
    for file, kind in (("adls-gen2-sp.yml", "service_principal"), ("file-share.yml", "none"),
                       ("blob-credless.yml", "none")):  # fmt: skip
        made = json_cli(lapis_server, "datastore", "create", "-f", str(FILES / file),
                        "-n", f"x{uuid.uuid4().hex[:6]}")  # fmt: skip
        assert made["credential_kind"] == kind, (file, made)
    default = json_cli(lapis_server, "datastore", "show", "workspaceblobstore")
    assert default["is_default"] and default["type"] == "workspace"
    kept = lapis_cli(lapis_server, "datastore", "delete", "-n", "workspaceblobstore", "--yes")
    assert kept.returncode != 0 and "workspace's own datastore" in kept.stderr


def test_mistakes_are_one_line_with_the_file_and_line(lapis_server: Any, tmp_path: Path) -> None:
    retired = lapis_cli(lapis_server, "datastore", "create", "-f", str(FILES / "adls-gen1.yml"))
    assert retired.returncode != 0 and "Traceback" not in retired.stderr
    assert "adls-gen1.yml:3" in retired.stderr and "retired" in retired.stderr, retired.stderr
    typo = tmp_path / "typo.yml"
    typo.write_text(
        "name: typo\ntype: azure_blob\naccount_name: a\ncontainer_name: c\n"
        "credentials:\n  acount_key: k\n"
    )
    said = lapis_cli(lapis_server, "datastore", "create", "-f", str(typo))
    assert said.returncode != 0 and "typo.yml:6" in said.stderr, said.stderr
    assert "did you mean 'account_key'" in said.stderr
    # a local folder only where the server's operator allows (LAPIS_LOCAL_DATASTORE_ROOTS)
    local = tmp_path / "local.yml"
    local.write_text(f"name: scratch\ntype: local\npath: {tmp_path}\n")
    refused = lapis_cli(lapis_server, "datastore", "create", "-f", str(local))
    assert refused.returncode != 0 and "LAPIS_LOCAL_DATASTORE_ROOTS" in refused.stderr
    home = tmp_path / "home.yml"
    home.write_text(f"name: home\ntype: local\npath: {lapis_server.home}/jobs\n")
    inside = lapis_cli(lapis_server, "datastore", "create", "-f", str(home))
    assert inside.returncode != 0 and "workspace home" in inside.stderr


def test_a_local_datastore_under_an_allowed_folder(
    server_type: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """The operator's switch, on a server of its own."""
    allowed = tmp_path / "shared-data"
    (allowed / "images").mkdir(parents=True)
    monkeypatch.setenv("LAPIS_LOCAL_DATASTORE_ROOTS", str(allowed))
    server = server_type(home=tmp_path / "home").start()
    try:
        spec = tmp_path / "local.yml"
        spec.write_text(f"name: images\ntype: local\npath: {allowed / 'images'}\n")
        made = json_cli(server, "datastore", "create", "-f", str(spec))
        assert made["url"] == f"file://{allowed / 'images'}"
        (allowed / "images" / "cats").mkdir()
        (allowed / "images" / "cats" / "a.png").write_bytes(b"png")
        secret = tmp_path / "home" / "not-for-jobs.txt"  # inside the workspace home
        secret.write_text("the workspace's own file")
        (allowed / "images" / "cats" / "leak.txt").symlink_to(secret)  # a link out: ignored
        listed = json_cli(server, "datastore", "browse", "images", "--path", "cats")
        assert listed == [{"path": "cats/a.png", "is_dir": False, "size": 3}]
        up = lapis_cli(server, "datastore", "browse", "images", "--path", "../..")
        assert up.returncode != 0 and "Traceback" not in up.stderr
        # a job reads it in place (read-only) and writes an output into it
        job_file = write_job(tmp_path / "job", """
            command: >-
              ls ${{inputs.cats}} && (touch ${{inputs.cats}}/new.png || echo write refused)
              && cp ${{inputs.cats}}/a.png ${{outputs.thumbs}}/a-small.png
            inputs:
              cats:
                path: azureml://datastores/images/paths/cats
            outputs:
              thumbs:
                path: azureml://datastores/images/paths/thumbs/${{name}}
            environment: system
            compute: local
            """)  # fmt: skip
        job = submit(server, job_file)
        done = wait(server, job["name"], timeout=120)
        log = log_text(server, job["name"])
        assert done["status"] == "Completed", (done["status_reason"], log)
        assert "read in place, read-only" in log and "write refused" in log, log
        assert not (allowed / "images" / "cats" / "new.png").exists()
        assert (allowed / "images" / "thumbs" / job["name"] / "a-small.png").read_bytes() == b"png"
        # copied (download), the link out of the datastore's folder is left behind
        copied = submit(server, write_job(tmp_path / "copy", """
            command: ls ${{inputs.cats}} && cat ${{inputs.cats}}/* | wc -c
            inputs:
              cats:
                path: azureml://datastores/images/paths/cats
                mode: download
            environment: system
            compute: local
            """))  # fmt: skip
        done = wait(server, copied["name"], timeout=120)
        log = log_text(server, copied["name"])
        assert done["status"] == "Completed", (done["status_reason"], log)
        assert "a.png" in log and "leak.txt" not in log and "the workspace" not in log, log
        outside = tmp_path / "other.yml"
        (tmp_path / "elsewhere").mkdir()
        outside.write_text(f"name: other\ntype: local\npath: {tmp_path / 'elsewhere'}\n")
        refused = lapis_cli(server, "datastore", "create", "-f", str(outside))
        assert refused.returncode != 0 and str(allowed) in refused.stderr
    finally:
        server.stop()


def test_the_sdk_makes_datastores_as_azure_ai_ml_does(lapis_server: Any) -> None:
    from lapis.ml import MLClient
    from lapis.ml.entities import (
        AccessKeyConfiguration,
        AzureDataLakeGen2Datastore,
        S3Datastore,
        ServicePrincipalConfiguration,
    )

    lake, bucket = f"lake_{uuid.uuid4().hex[:6]}", f"s3_{uuid.uuid4().hex[:6]}"
    secret = f"sp-secret-{uuid.uuid4().hex}"
    with MLClient(lapis_server.url, lapis_server.token) as ml:
        made = ml.datastores.create_or_update(
            AzureDataLakeGen2Datastore(
                name=lake, account_name="lapistestlake", filesystem="curated", protocol="abfss",
                credentials=ServicePrincipalConfiguration(
                    tenant_id="t", client_id="c", client_secret=secret
                ),
            )
        )  # fmt: skip
        assert made.credential_kind == "service_principal" and made.filesystem == "curated"
        assert made.url == "abfss://curated@lapistestlake.dfs.core.windows.net"
        assert secret not in repr(made) and secret not in repr(ml.datastores.get(lake))
        ml.datastores.create_or_update(
            S3Datastore(name=bucket, bucket="raw", endpoint_url="http://127.0.0.1:9",
                        credentials=AccessKeyConfiguration("id", "key"))
        )  # fmt: skip
        listed = {d.name: d for d in ml.datastores.list()}
        assert {lake, bucket, "workspaceblobstore"} <= set(listed)
        assert listed[bucket].url == "s3://raw"
        assert ml.datastores.get_default().is_default
        ml.datastores.delete(lake)
        ml.datastores.delete(bucket)
        assert {lake, bucket}.isdisjoint(d.name for d in ml.datastores.list())
