"""Jobs reading and writing datastores on real storage services on loopback — Azurite
for Blob, moto's server for S3 — in each input mode: ``ro_mount`` streams into the
host's read-only cache once and reuses it, ``download`` copies, ``direct`` hands the job
a URL and the credential in the storage library's own variables. An output with a
datastore ``path:`` is written there; a wrong key fails the job with the service's
reason; a role without the datastore's credential action cannot submit the job."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from clusterkit import (
    json_cli,
    one_store,  # noqa: F401  (the module's lapis_server: SQLite)
)
from jobkit import get, log_text, submit, wait, write_job
from storagekit import ACCOUNT, ACCOUNT_KEY, azurite_server, moto_s3_server  # noqa: F401  (fixtures)
from test_job_data import _job

from lapis.compute import fuse_mount

FILES = {"heart/heart.csv": b"age,chol\n63,233\n67,286\n71,300\n", "heart/raw/notes.txt": b"UCI\n"}
SUMMARY = "outputs:\n          summary:\n            type: uri_folder\n            path: {path}"


def _fill(fs: Any, root: str) -> None:
    fs.mkdir(root)
    for path, data in FILES.items():
        fs.pipe(f"{root}/{path}", data)


def _datastore(server: Any, tmp_path: Path, text: str) -> str:
    name = f"ds_{uuid.uuid4().hex[:6]}"
    spec = tmp_path / f"{name}.yml"
    spec.write_text(f"name: {name}\n{text}")
    json_cli(server, "datastore", "create", "-f", str(spec))
    return name


NO_FUSE = 'environment_variables:\n          LAPIS_DATA_FUSE: "off"'


def _run(
    server: Any, tmp_path: Path, path: str, mode: str, outputs: str = "", env: str = ""
) -> tuple[dict[str, Any], str]:
    job = submit(server, _job(tmp_path, path, mode, outputs, env))
    done = wait(server, job["name"], timeout=180)
    return done, log_text(server, job["name"])


def _read_every_way(server: Any, tmp_path: Path, ds: str) -> None:
    path = f"azureml://datastores/{ds}/paths/heart"
    logs = []
    runs = [("ro_mount", NO_FUSE), ("ro_mount", NO_FUSE), ("download", ""), ("direct", "")]
    for mode, env in runs:
        done, log = _run(server, tmp_path, path, mode, env=env)
        assert done["status"] == "Completed", (done["status_reason"], log)
        assert "files: heart.csv,raw/notes.txt" in log and "rows: 3" in log, log
        logs.append(log)
    assert "no FUSE mount (turned off by LAPIS_DATA_FUSE); streamed 34 bytes into the " \
           "host's read-only cache" in logs[0], logs[0]  # fmt: skip
    assert "write: refused" in logs[0]
    assert "all found in the host's read-only cache (2 files" in logs[1], logs[1]
    assert "download of " + path + ": downloaded 2 files" in logs[2]


def test_blob_on_azurite_every_mode_an_output_and_a_wrong_key(
    lapis_server: Any, azurite: str, tmp_path: Path
) -> None:
    import adlfs

    container = f"ml-{uuid.uuid4().hex[:6]}"
    conn = f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};" \
           f"BlobEndpoint={azurite};"  # fmt: skip
    fs = adlfs.AzureBlobFileSystem(connection_string=conn)
    _fill(fs, container)
    base = f"type: azure_blob\naccount_name: {ACCOUNT}\ncontainer_name: {container}\n" \
           f"account_url: {azurite}\n"  # fmt: skip
    ds = _datastore(lapis_server, tmp_path, base + f"credentials:\n  account_key: {ACCOUNT_KEY}\n")
    _read_every_way(lapis_server, tmp_path, ds)

    out = SUMMARY.format(path=f"azureml://datastores/{ds}/paths/results/${{{{name}}}}/")
    done, log = _run(lapis_server, tmp_path, f"azureml://datastores/{ds}/paths/heart", "download",
                     out)  # fmt: skip
    assert done["status"] == "Completed", (done["status_reason"], log)
    assert fs.cat(f"{container}/results/{done['name']}/summary.txt") == b"2 files\n"
    assert get(lapis_server, done["name"])["outputs"]["summary"]["uri"] == (
        f"azureml://datastores/{ds}/paths/results/{done['name']}"
    )

    bad_key = f"credentials:\n  account_key: {ACCOUNT_KEY[:-8]}AAAAAAA=\n"
    wrong = _datastore(lapis_server, tmp_path, base + bad_key)
    done, _ = _run(lapis_server, tmp_path, f"azureml://datastores/{wrong}/paths/heart", "ro_mount")
    assert done["status"] == "Failed"
    assert done["status_reason"].startswith("input data: azureml://datastores/"), done[
        "status_reason"
    ]
    assert (
        "AuthorizationFailure" in done["status_reason"] and "Traceback" not in done["status_reason"]
    )


def test_s3_on_moto_every_mode_and_an_output(
    lapis_server: Any, moto_s3: str, tmp_path: Path
) -> None:
    import s3fs

    bucket = f"ml-{uuid.uuid4().hex[:6]}"
    fs = s3fs.S3FileSystem(key="id", secret="secret", client_kwargs={"endpoint_url": moto_s3})
    _fill(fs, bucket)
    ds = _datastore(lapis_server, tmp_path, f"type: s3\nbucket: {bucket}\nendpoint_url: {moto_s3}\n"
                    "credentials:\n  access_key_id: id\n  secret_access_key: secret\n")  # fmt: skip
    _read_every_way(lapis_server, tmp_path, ds)
    # a plain s3:// URL of a registered bucket is read with that datastore's credential
    out = SUMMARY.format(path=f"azureml://datastores/{ds}/paths/out")
    done, log = _run(lapis_server, tmp_path, f"s3://{bucket}/heart", "ro_mount", out)
    assert done["status"] == "Completed", (done["status_reason"], log)
    assert get(lapis_server, done["name"])["inputs"]["data"]["uri"] == (
        f"azureml://datastores/{ds}/paths/heart"
    )
    fs.invalidate_cache()
    assert fs.cat(f"{bucket}/out/summary.txt") == b"2 files\n"
    # fetched through the server, read with the datastore's credential...
    listing = f"/api/v1/jobs/{done['name']}/outputs/summary/files"
    with lapis_server.client() as admin:
        assert [f["path"] for f in admin.get(listing).json()["files"]] == ["summary.txt"]
        assert admin.get(f"{listing}/summary.txt").content == b"2 files\n"
        stored = admin.get(f"/api/v1/jobs/{done['name']}/files").json()["stored_outputs"]
        assert stored == {"summary": f"azureml://datastores/{ds}/paths/out"}
    # ...so only by a role that may use that credential
    bearer = {"Authorization": f"Bearer {_no_creds(lapis_server)}"}
    with httpx.Client(base_url=lapis_server.url, headers=bearer) as me:
        refused = me.get(listing)
        assert refused.status_code == 403 and "listsecrets" in refused.text, refused.text
        assert me.get(f"{listing}/summary.txt").status_code == 403


def test_ro_mount_is_a_lazy_read_only_fuse_mount(
    lapis_server: Any, moto_s3: str, tmp_path: Path
) -> None:
    """Where the host can mount (CI can: /dev/fuse, libfuse2 and fusepy from `make test`),
    a remote ro_mount is a FUSE mount: listed and read through the kernel, writes refused,
    and gone once the job has ended."""
    why = fuse_mount.available()
    if why is not None:
        pytest.skip(f"FUSE MOUNTS NOT TESTED: {why}; `make test` installs libfuse2 (CI has it)")
    import s3fs

    bucket = f"ml-{uuid.uuid4().hex[:6]}"
    fs = s3fs.S3FileSystem(key="id", secret="secret", client_kwargs={"endpoint_url": moto_s3})
    _fill(fs, bucket)
    ds = _datastore(lapis_server, tmp_path, f"type: s3\nbucket: {bucket}\nendpoint_url: {moto_s3}\n"
                    "credentials:\n  access_key_id: id\n  secret_access_key: secret\n")  # fmt: skip
    path = f"azureml://datastores/{ds}/paths/heart"
    done, log = _run(lapis_server, tmp_path, path, "ro_mount")
    assert done["status"] == "Completed", (done["status_reason"], log)
    assert f"ro_mount of {path}: FUSE mount, read-only, read lazily (a folder)" in log, log
    assert "files: heart.csv,raw/notes.txt" in log and "rows: 3" in log, log
    assert "write: refused" in log
    fs.invalidate_cache()
    assert fs.cat(f"{bucket}/heart/heart.csv") == FILES["heart/heart.csv"]  # untouched
    assert fuse_mount.mounted_below(lapis_server.home) == []  # unmounted with the job
    first_line = "python -c \"import sys; print('one:', open(sys.argv[1]).readline())\""
    one = write_job(
        tmp_path / "one-file",
        f"""
        command: {first_line} ${{{{inputs.csv}}}}
        inputs:
          csv:
            type: uri_file
            path: {path}/heart.csv
            mode: ro_mount
        environment: system
        compute: local
        """,
    )  # fmt: skip
    done = wait(lapis_server, submit(lapis_server, one)["name"], timeout=180)
    log = log_text(lapis_server, done["name"])
    assert done["status"] == "Completed", (done["status_reason"], log)
    assert "FUSE mount, read-only, read lazily (1 file)" in log and "one: age,chol" in log, log


def _no_creds(server: Any) -> str:
    """A token of a new user whose role allows everything but datastore credentials."""
    user, role = f"no-creds-{uuid.uuid4().hex[:6]}", f"NoKeys{uuid.uuid4().hex[:6]}"
    text = (f"name: {role}\nactions: ['workspaces/*']\n"
            "not_actions: ['workspaces/datastores/listsecrets/action']\n")  # fmt: skip
    with server.client() as admin:
        made = admin.post("/api/v1/roles", json={"yaml": text, "source": "role.yml"})
        assert made.status_code == 201, made.text
        admin.post("/api/v1/users", json={"name": user, "roles": [role]}).raise_for_status()
        token: str = admin.post("/api/v1/tokens", json={"name": "t", "user": user}).json()["token"]
    return token


def test_a_role_without_the_credential_action_cannot_read_a_datastore(
    lapis_server: Any, moto_s3: str, tmp_path: Path
) -> None:
    ds = _datastore(lapis_server, tmp_path, f"type: s3\nbucket: b\nendpoint_url: {moto_s3}\n"
                    "credentials:\n  access_key_id: id\n  secret_access_key: secret\n")  # fmt: skip
    token = _no_creds(lapis_server)
    job = _job(tmp_path, f"azureml://datastores/{ds}/paths/heart", "ro_mount")
    with httpx.Client(
        base_url=lapis_server.url, headers={"Authorization": f"Bearer {token}"}
    ) as me:
        refused = me.post("/api/v1/jobs", json={"yaml": job.read_text(), "source": "job.yml"})
        assert refused.status_code == 403, refused.text
        assert f"datastore '{ds}' is read with its credential" in refused.text
        assert "listsecrets" in refused.text
        assert me.post(f"/api/v1/datastores/{ds}/listSecrets").status_code == 403
        # the workspace's own store has no credential: the same user may read it
        own = _job(tmp_path, "azureml://datastores/workspaceblobstore/paths/x", "download")
        taken = me.post("/api/v1/jobs", json={"yaml": own.read_text(), "source": "job.yml"})
        assert taken.status_code == 400 and "snapshot" in taken.text, taken.text
