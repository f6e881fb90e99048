"""Data assets through the CLI and the API, on both stores: a local folder uploaded to
the default datastore (once per content, resumable, checked), versions that count up
and never change, @latest with archive and restore, datastore paths and storage URLs
as they are, and every mistake in one line."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from clusterkit import json_cli
from jobkit import lapis_cli

pytestmark = pytest.mark.stores("sqlite", "postgres")

FILES = Path(__file__).resolve().parents[1] / "compat" / "files"


def _heart(folder: Path) -> Path:
    (folder / "heart" / "raw").mkdir(parents=True)
    (folder / "heart" / "heart.csv").write_text("age,chol\n63,233\n")
    (folder / "heart" / "raw" / "notes.txt").write_text("from UCI\n")
    return folder / "heart"


def test_a_local_folder_becomes_versions_uploaded_once(lapis_server: Any, tmp_path: Path) -> None:
    name = f"heart-{uuid.uuid4().hex[:6]}"
    _heart(tmp_path)
    spec = tmp_path / "data.yml"
    spec.write_text(
        (FILES / "data" / "local-folder.yml").read_text().replace("heart-dataset", name)
    )
    first = json_cli(lapis_server, "data", "create", "-f", str(spec))
    assert first["version"] == "1" and first["type"] == "uri_folder"
    assert first["path"].startswith("azureml://datastores/workspaceblobstore/paths/LocalUpload/")
    folder = first["path"].split("/paths/", 1)[1].rstrip("/")
    listed = json_cli(lapis_server, "datastore", "browse", "workspaceblobstore", "--path", folder)
    assert {e["path"] for e in listed} == {f"{folder}/heart.csv", f"{folder}/raw"}

    second = json_cli(lapis_server, "data", "create", "-f", str(spec))  # same files: same place
    assert second["version"] == "2" and second["path"] == first["path"]
    (tmp_path / "heart" / "heart.csv").write_text("age,chol\n63,233\n67,286\n")
    third = json_cli(lapis_server, "data", "create", "-f", str(spec), "--description", "more")
    assert third["version"] == "3" and third["path"] != first["path"]

    assert json_cli(lapis_server, "data", "show", "-n", name)["version"] == "3"
    assert json_cli(lapis_server, "data", "show", name, "--version", "1")["path"] == first["path"]
    assert lapis_cli(lapis_server, "data", "archive", "-n", name, "--version", "3").returncode == 0
    assert json_cli(lapis_server, "data", "show", "-n", name)["version"] == "2"  # @latest
    versions = json_cli(lapis_server, "data", "list", "-n", name)
    assert [(v["version"], v["archived"]) for v in versions] == [("3", True), ("2", False),
                                                                 ("1", False)]  # fmt: skip
    assert lapis_cli(lapis_server, "data", "restore", "-n", name).returncode == 0
    assert json_cli(lapis_server, "data", "show", "-n", name)["version"] == "3"
    again = lapis_cli(lapis_server, "data", "create", "-f", str(spec), "--version", "2")
    assert again.returncode != 0 and "immutable" in again.stderr and "Traceback" not in again.stderr


def test_an_upload_resumes_and_a_changed_file_is_refused(lapis_server: Any) -> None:
    body = {"a.bin": b"a" * 5000, "b.bin": b"b" * 7000}
    files = [{"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
             for p, d in body.items()]  # fmt: skip
    leaf = f"resume-{uuid.uuid4().hex[:6]}"
    order = {"leaf": leaf, "type": "uri_folder", "files": files}
    with lapis_server.client() as http:
        begun = http.post("/api/v1/data/uploads", json=order).json()
        assert sorted(begun["missing"]) == ["a.bin", "b.bin"]
        put = f"/api/v1/data/uploads/{begun['upload']}/files"
        assert http.put(f"{put}/a.bin", content=body["a.bin"]).status_code == 200
        # the client is gone here; the same upload begun again wants only the rest
        again = http.post("/api/v1/data/uploads", json=order).json()
        assert again["upload"] == begun["upload"] and again["missing"] == ["b.bin"]
        longer = http.put(f"{put}/b.bin", content=b"b" * 9000)  # never more than declared
        assert longer.status_code == 400
        assert "longer than its 7000 bytes" in longer.json()["message"]
        changed = http.put(f"{put}/b.bin", content=b"c" * 7000)
        assert changed.status_code == 400 and "arrived changed" in changed.json()["message"]
        stranger = http.put(f"{put}/c.bin", content=b"x")
        assert stranger.status_code == 400 and "not a file of upload" in stranger.json()["message"]
        assert http.put(f"{put}/b.bin", content=body["b.bin"]).status_code == 200
        done = http.post("/api/v1/data/uploads", json=order).json()
        assert done["missing"] == []


def test_datastore_paths_and_urls_are_registered_as_they_are(
    lapis_server: Any, tmp_path: Path
) -> None:
    ds = f"training_blob_{uuid.uuid4().hex[:6]}"
    blob = tmp_path / "blob.yml"
    blob.write_text((FILES / "datastore" / "blob-key.yml").read_text().replace("training_blob", ds))
    json_cli(lapis_server, "datastore", "create", "-f", str(blob))
    on_ds = tmp_path / "on-ds.yml"
    name = f"iris-{uuid.uuid4().hex[:6]}"
    text = (FILES / "data" / "datastore-file.yml").read_text()
    on_ds.write_text(text.replace("training_blob", ds).replace("iris-on-a-datastore", name))
    made = json_cli(lapis_server, "data", "create", "-f", str(on_ds))
    assert made["path"] == f"azureml://datastores/{ds}/paths/datasets/iris.csv"
    wasbs = "wasbs://images@lapisteststore.blob.core.windows.net/train/"
    url = json_cli(lapis_server, "data", "create", "--name", f"{name}-url", "--type",
                   "uri_folder", "--path", wasbs)  # fmt: skip
    assert url["path"].startswith("wasbs://images@")
    missing = lapis_cli(lapis_server, "data", "create", "--name", name, "--path",
                        "azureml://datastores/nowhere/paths/x.csv")  # fmt: skip
    assert missing.returncode != 0 and "Datastore 'nowhere' not found" in missing.stderr
    with lapis_server.client() as http:  # the server never reads a path from its own disk
        local = http.post("/api/v1/data", json={"name": name, "path": "/etc"})
        assert local.status_code == 400 and "is a local path" in local.json()["message"]
    gone = lapis_cli(lapis_server, "data", "create", "--name", name, "--path", str(tmp_path / "no"))
    assert gone.returncode != 0 and "does not exist here" in gone.stderr
    bad = lapis_cli(lapis_server, "data", "create", "-f", str(FILES / "data" / "sql-import.yml"))
    assert bad.returncode != 0 and "sql-import.yml:5" in bad.stderr

    reader = f"data-reader-{uuid.uuid4().hex[:6]}"
    with lapis_server.client() as admin:
        admin.post("/api/v1/users", json={"name": reader, "roles": ["Reader"]})
        token = admin.post("/api/v1/tokens", json={"name": "t", "user": reader}).json()["token"]
    with httpx.Client(base_url=lapis_server.url,
                      headers={"Authorization": f"Bearer {token}"}) as me:  # fmt: skip
        assert me.get(f"/api/v1/data/{name}/versions/latest").status_code == 200
        refused = me.post("/api/v1/data", json={"name": name, "path": "s3://b/k"})
        assert refused.status_code == 403
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_the_sdk_registers_local_data_as_azure_ai_ml_does(
    lapis_server: Any, tmp_path: Path
) -> None:
    from lapis.ml import MLClient
    from lapis.ml.constants import AssetTypes
    from lapis.ml.entities import Data

    name = f"sdk-heart-{uuid.uuid4().hex[:6]}"
    local = _heart(tmp_path)
    with MLClient(lapis_server.url, lapis_server.token) as ml:
        made = ml.data.create_or_update(
            Data(name=name, path=str(local), type=AssetTypes.URI_FOLDER, description="uci")
        )
        assert made.version == "1" and str(made.path).startswith("azureml://datastores/")
        csv = ml.data.create_or_update(
            Data(name=f"{name}-csv", path=str(local / "heart.csv"), type=AssetTypes.URI_FILE)
        )
        assert str(csv.path).endswith("/heart.csv")
        assert ml.data.get(name, label="latest").path == made.path
        assert [d.version for d in ml.data.list(name)] == ["1"]
        ml.data.archive(name)
        assert name not in {d.name for d in ml.data.list()}
        ml.data.restore(name, version="1")
        assert ml.data.get(name).version == "1"


def test_a_large_folder_upload_killed_halfway_resumes(lapis_server: Any, tmp_path: Path) -> None:
    """1 GiB in 16 files; the client is killed (SIGKILL) once about half are on the
    server; the same command again sends only the rest, and the asset is whole."""
    import os
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "big"
    folder.mkdir()
    chunk = os.urandom(1024 * 1024)
    for i in range(16):
        with open(folder / f"part-{i:02d}.bin", "wb") as fh:
            for _ in range(64):
                fh.write(chunk)
    name = f"big-{uuid.uuid4().hex[:6]}"
    argv = [sys.executable, "-m", "lapis", "data", "create", "--name", name, "--path", str(folder)]
    env = {**os.environ, **lapis_server.env}
    uploads = lapis_server.home / "artifacts" / "datastores" / "workspaceblobstore" / "LocalUpload"
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def arrived() -> list[Path]:
        return [p for p in uploads.rglob("part-*.bin")] if uploads.exists() else []

    deadline = time.monotonic() + 300
    while len(arrived()) < 8 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = len(arrived())
    assert 1 <= before < 16, f"{before} files had arrived when the client was killed"
    whole = {p.name: p.stat().st_mtime_ns for p in arrived()
             if p.stat().st_size == 64 * 1024 * 1024}  # fmt: skip
    assert whole, "no file had arrived whole"
    again = subprocess.run([*argv, "-o", "json"], env=env, capture_output=True, text=True,
                           timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stderr
    made = json.loads(again.stdout)
    assert made["version"] == "1"
    rel = made["path"].split("/paths/", 1)[1].rstrip("/")
    landed = uploads.parent / rel
    assert sorted(p.name for p in landed.iterdir()) == [f"part-{i:02d}.bin" for i in range(16)]
    assert all(p.stat().st_size == 64 * 1024 * 1024 for p in landed.iterdir())
    # what had arrived whole was not sent again
    assert {n: (landed / n).stat().st_mtime_ns for n in whole} == whole
    with open(landed / "part-15.bin", "rb") as fh:
        assert fh.read(1024 * 1024) == chunk


def test_one_large_file_killed_halfway_resumes_from_its_last_byte(
    lapis_server: Any, tmp_path: Path
) -> None:
    """256 MiB in one file; the client is killed (SIGKILL) part way; the server kept what
    had come, says how much, and the same command again sends only the rest."""
    import hashlib
    import os
    import signal
    import subprocess
    import sys
    import time

    big = tmp_path / "model.bin"
    block = os.urandom(1024 * 1024)
    with open(big, "wb") as fh:
        for _ in range(256):
            fh.write(block)
    name = f"one-{uuid.uuid4().hex[:6]}"
    argv = [sys.executable, "-m", "lapis", "data", "create", "--name", name, "--path", str(big),
            "--type", "uri_file"]  # fmt: skip
    env = {**os.environ, **lapis_server.env}
    partials = lapis_server.home / "artifacts" / "datastores" / "workspaceblobstore" / ".partial"

    def kept() -> int:
        return sum(p.stat().st_size for p in partials.rglob("*") if p.is_file()) if (
            partials.exists()) else 0  # fmt: skip

    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while kept() < 64 * 1024 * 1024 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # the server notices the broken stream and closes the partial
    held = kept()
    assert 0 < held < 256 * 1024 * 1024, f"{held} bytes kept when the client was killed"
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    entry = {"path": "model.bin", "size": big.stat().st_size, "sha256": digest}
    manifest = {"leaf": "model.bin", "type": "uri_file", "files": [entry]}
    with lapis_server.client() as http:
        begun = http.post("/api/v1/data/uploads", json=manifest).json()
        assert begun["missing"] == ["model.bin"] and begun["partial"] == {"model.bin": held}
        wrong = http.put(f"/api/v1/data/uploads/{begun['upload']}/files/model.bin",
                         params={"offset": held + 1}, content=b"x")  # fmt: skip
        assert wrong.status_code == 400 and "send it from the start" in wrong.json()["message"]
    again = subprocess.run([*argv, "-o", "json"], env=env, capture_output=True, text=True,
                           timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stderr
    made = json.loads(again.stdout)
    rel = made["path"].split("/paths/", 1)[1]
    landed = lapis_server.home / "artifacts" / "datastores" / "workspaceblobstore" / rel
    assert hashlib.sha256(landed.read_bytes()).hexdigest() == digest
    assert kept() == 0  # the partial became the file


def test_download_and_preview(lapis_server: Any, tmp_path: Path) -> None:
    name = f"heart-dl-{uuid.uuid4().hex[:6]}"
    json_cli(lapis_server, "data", "create", "--name", name, "--path", str(_heart(tmp_path)))
    target = tmp_path / "downloads"
    done = lapis_cli(lapis_server, "data", "download", "-n", name, "--download-path", str(target))
    assert done.returncode == 0, done.stderr
    assert (target / name / "heart.csv").read_text() == "age,chol\n63,233\n"
    assert (target / name / "raw" / "notes.txt").read_text() == "from UCI\n"
    shown = json_cli(lapis_server, "data", "preview", "-n", name)
    assert shown["source"] == "heart.csv" and shown["format"] == "csv"
    assert shown["columns"] == [
        {"name": "age", "type": "integer"},
        {"name": "chol", "type": "integer"},
    ]
    assert shown["rows"] == [["63", "233"]]
    table = lapis_cli(lapis_server, "data", "preview", "-n", name)
    assert "age" in table.stdout and "233" in table.stdout, table.stdout

    mlt = tmp_path / "titanic"
    mlt.mkdir()
    (mlt / "titanic.csv").write_text("PassengerId,Survived,Age\n1,0,22\n2,1,38\n3,1,26\n")
    (mlt / "MLTable").write_text("paths:\n  - file: ./titanic.csv\ntransformations:\n"
                                 "  - read_delimited:\n      delimiter: ','\n"
                                 "  - drop_columns: PassengerId\n  - take: 2\n")  # fmt: skip
    json_cli(lapis_server, "data", "create", "--name", f"{name}-t", "--type", "mltable",
             "--path", str(mlt))  # fmt: skip
    table_view = json_cli(lapis_server, "data", "preview", "-n", f"{name}-t")
    assert table_view["format"] == "mltable"
    assert [c["name"] for c in table_view["columns"]] == ["Survived", "Age"]
    assert table_view["rows"] == [["0", "22"], ["1", "38"]]
    missing = lapis_cli(lapis_server, "data", "download", "-n", "no-such-asset")
    assert missing.returncode != 0 and "not found" in missing.stderr
