"""The workspace's file share through the API and ``lapis file``: each user's folder,
uploads (a file, a folder, a large file streamed), downloads, folders, rename, delete;
others' folders readable, not writable; paths that try to leave the share refused."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import httpx
from clusterkit import json_cli, until
from jobkit import lapis_cli


def _user(server: Any, role: str) -> tuple[str, httpx.Client]:
    name = f"f{uuid.uuid4().hex[:6]}"
    with server.client() as admin:
        assert admin.post("/api/v1/users", json={"name": name, "roles": [role]}).status_code == 201
        token = admin.post("/api/v1/tokens", json={"name": "t", "user": name}).json()["token"]
    return name, httpx.Client(base_url=server.url, timeout=60,
                              headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def test_lapis_file_round_trips_files_and_folders(lapis_server: Any, tmp_path: Path) -> None:
    local = tmp_path / "project"
    (local / "data").mkdir(parents=True)
    (local / "train.ipynb").write_text('{"cells": [], "nbformat": 4, "nbformat_minor": 5}')
    (local / "data" / "rows.csv").write_text("a,b\n1,2\n")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(40 * 1024 * 1024))  # over the 32 MB JSON body limit: streamed
    done = lapis_cli(lapis_server, "file", "upload", str(local))
    assert done.returncode == 0, done.stderr
    assert json_cli(lapis_server, "file", "upload", str(big), "project")[0]["size"] == 40 * 2**20
    listed = json_cli(lapis_server, "file", "ls", "project")
    assert listed["path"] == "Users/admin/project"
    assert [(e["name"], e["type"]) for e in listed["entries"]] == [
        ("data", "folder"), ("big.bin", "file"), ("train.ipynb", "file")]  # fmt: skip
    got = tmp_path / "got"
    assert lapis_cli(lapis_server, "file", "download", "project", "--download-path",
                     str(got)).returncode == 0  # fmt: skip
    assert (got / "project" / "data" / "rows.csv").read_text() == "a,b\n1,2\n"
    assert (got / "project" / "big.bin").read_bytes() == big.read_bytes()
    assert lapis_cli(lapis_server, "file", "mkdir", "project/runs/2026").returncode == 0
    moved = json_cli(lapis_server, "file", "mv", "project/train.ipynb", "project/runs/t.ipynb")
    assert moved["path"] == "Users/admin/project/runs/t.ipynb"
    assert lapis_cli(lapis_server, "file", "rm", "project/data", "--yes").returncode == 0
    names = [e["name"] for e in json_cli(lapis_server, "file", "ls", "project")["entries"]]
    assert names == ["runs", "big.bin"]
    # where it lives: the workspace home's file share, what every instance's JupyterLab opens
    kept = lapis_server.home / "fileshare" / "Users" / "admin" / "project" / "runs" / "t.ipynb"
    assert kept.is_file()
    # mistakes are one line
    missing = lapis_cli(lapis_server, "file", "download", "project/nope.txt")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_others_may_read_my_folder_not_change_it(lapis_server: Any) -> None:
    alice, as_alice = _user(lapis_server, "AzureML Data Scientist")
    bob, as_bob = _user(lapis_server, "AzureML Data Scientist")
    reader, as_reader = _user(lapis_server, "Reader")
    with as_alice, as_bob, as_reader, lapis_server.client() as owner:
        mine = f"Users/{alice}/notes.md"
        r = as_alice.put("/api/v1/files/content", params={"path": mine}, content=b"# hi\n")
        assert r.status_code == 200, r.text
        for who in (as_bob, as_reader, owner):  # the team shares notebooks: all may read
            assert who.get("/api/v1/files/content", params={"path": mine}).content == b"# hi\n"
        shared = as_bob.get("/api/v1/files", params={"path": "Users"}).json()["entries"]
        assert {alice, bob} <= {e["name"] for e in shared}
        # bob may not change alice's files, nor write outside Users/<name>/
        for call in (
            lambda: as_bob.put("/api/v1/files/content", params={"path": mine}, content=b"x"),
            lambda: as_bob.delete("/api/v1/files", params={"path": mine}),
            lambda: as_bob.post(
                "/api/v1/files/rename", json={"path": mine, "to": f"Users/{bob}/n.md"}
            ),
            lambda: as_bob.post("/api/v1/files/folders", json={"path": f"Users/{alice}/x"}),
            lambda: as_bob.put("/api/v1/files/content", params={"path": "root.txt"}, content=b"x"),
        ):
            r = call()
            assert r.status_code == 403, r.text
            assert "error_code" in r.json()
        r = as_reader.put("/api/v1/files/content", params={"path": f"Users/{reader}/a"},
                          content=b"x")  # fmt: skip
        assert r.status_code == 403 and "workspaces/notebooks/storage/write" in r.text
        # an Owner may tidy anyone's folder; a user's own folder itself stays
        assert owner.delete("/api/v1/files", params={"path": mine}).status_code == 200
        r = as_alice.delete("/api/v1/files", params={"path": f"Users/{alice}"})
        assert r.status_code == 403 and "fixed" in r.json()["message"]


def test_paths_never_leave_the_share(lapis_server: Any, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("not yours")
    link = lapis_server.home / "fileshare" / "Users" / "admin" / "escape"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(tmp_path)
    with lapis_server.client() as http:
        for bad in ("../server.json", "/etc/passwd", "Users/admin/../../../etc/passwd"):
            r = http.get("/api/v1/files/content", params={"path": bad})
            assert r.status_code == 400 and "without '..'" in r.json()["message"], bad
        r = http.get("/api/v1/files/content", params={"path": "Users/admin/escape/secret.txt"})
        assert r.status_code == 403 and "outside the file share" in r.json()["message"]
        r = http.put("/api/v1/files/content", params={"path": "Users/admin/escape/new.txt"},
                     content=b"x")  # fmt: skip
        assert r.status_code == 403
    assert not (tmp_path / "new.txt").exists()


def test_a_server_without_jupyterlab_says_so(lapis_server: Any) -> None:
    """LAPIS_JUPYTERLAB=off (these tests' default): instances are job queues, and their
    JupyterLab link says why it is not there."""
    name = f"nolab-q{uuid.uuid4().hex[:6]}"
    assert lapis_cli(lapis_server, "compute", "create", "-n", name, "--size",
                     "Standard_DS1_v2").returncode == 0  # fmt: skip
    apps = json_cli(lapis_server, "compute", "show", "-n", name)["applications"]
    assert apps[0]["name"] == "JupyterLab" and "switched off" in apps[0]["status"]
    until("Running", lambda: json_cli(lapis_server, "compute", "show", "-n", name)["state"]
          == "Running")  # fmt: skip
    with lapis_server.client() as http:
        r = http.get(f"/compute/{name}/lab/api/status")
        assert r.status_code == 501 and "LAPIS_JUPYTERLAB=off" in r.json()["message"]
    lapis_cli(lapis_server, "compute", "delete", "-n", name, "--yes")
