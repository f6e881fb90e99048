"""Regression tests for the holes found when the workspace was attacked (issue 9).

Each test reproduces one attack against a real ``lapis server`` and checks that it
now gets a 4xx with a message — and that the server and its files are unharmed.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from jobkit import lapis_cli, log_text, submit, wait, write_job

pytestmark = pytest.mark.stores("sqlite", "postgres")

MLFLOW = "/api/2.0/mlflow"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture(scope="module")
def api(lapis_server: Any) -> Any:
    with lapis_server.client() as c:
        yield c


def _run(api: httpx.Client, experiment: str) -> tuple[str, str]:
    """A fresh run and its store-relative artifact root."""
    r = api.post(f"{MLFLOW}/experiments/create", json={"name": experiment})
    exp_id = r.json()["experiment_id"] if r.status_code == 200 else None
    if exp_id is None:
        exp_id = api.get(
            f"{MLFLOW}/experiments/get-by-name", params={"experiment_name": experiment}
        ).json()["experiment"]["experiment_id"]
    run = api.post(f"{MLFLOW}/runs/create", json={"experiment_id": exp_id}).json()["run"]
    uri = run["info"]["artifact_uri"]
    return run["info"]["run_id"], uri.split("mlflow-artifacts:/", 1)[1].lstrip("/")


def _error(resp: httpx.Response, status: int, *fragments: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert body.get("error_code") and body.get("message"), body
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    return body


# --- 1. one request deleted every artifact -------------------------------------------
def test_artifact_deletes_never_reach_a_root(api: httpx.Client) -> None:
    run_id, root = _run(api, "holes-delete")
    assert api.put(f"{PROXY}/{root}/keep.txt", content=b"keep").status_code == 200
    assert api.put(f"{PROXY}/{root}/sub/gone.txt", content=b"x").status_code == 200
    experiment_folder = root.split("/")[0]
    for path in ("%2e", ".", "./", "%2e/", "%2E", experiment_folder, f"{experiment_folder}/%2e"):
        r = api.delete(f"{PROXY}/{path}")
        assert r.status_code in (400, 403, 405), (path, r.status_code, r.text)
        assert r.json()["message"], path
    r = api.delete(f"{PROXY}/")  # empty: not even a route that deletes
    assert r.status_code in (400, 403, 404, 405), r.text
    # the run's own root is not deletable either; things below it are
    _error(api.delete(f"{PROXY}/{root}"), 403, "only paths below")
    _error(api.delete(f"{PROXY}/{root}/%2e"), 403)
    # a path shaped like a run's, with a run id that is not this one's location
    fake = "0" * 32
    _error(api.delete(f"{PROXY}/{experiment_folder}/{fake}/artifacts/keep.txt"), 403)
    assert api.delete(f"{PROXY}/{root}/sub").status_code == 200
    assert api.get(f"{PROXY}/{root}/keep.txt").content == b"keep"
    assert api.get(f"{PROXY}/{root}/sub/gone.txt").status_code == 404
    # writes are pinned the same way: nothing lands on registered model versions
    _error(api.put(f"{PROXY}/models/victim/1/MLmodel", content=b"evil"), 403)
    _error(api.put(f"{PROXY}/stray.txt", content=b"x"), 403)
    assert api.get(f"{PROXY}/{root}/keep.txt").status_code == 200
    assert run_id


# --- 2. a snapshot digest was taken as a server path -----------------------------------
def test_snapshot_digest_is_never_a_path(lapis_server: Any, api: httpx.Client) -> None:
    job = textwrap.dedent(
        """\
        command: ls
        code: .
        environment: system
        """
    )
    for digest in ("/usr/share", "../../etc", "A" * 64, "0" * 63, ["x"]):
        r = api.post(
            "/api/v1/jobs",
            json={"yaml": job, "source": "job.yml", "snapshot": {"digest": digest}},
        )
        _error(r, 400, "snapshot digest")
    for digest in ("%2e%2e", "..%2f..%2fetc", "0" * 63):
        assert api.put(f"/api/v1/snapshots/{digest}", content=b"").status_code in (400, 404)
        assert api.head(f"/api/v1/snapshots/{digest}").status_code in (400, 404)
    assert not list((lapis_server.home / "jobs").glob("*/wd/share"))


# --- 3. decompression bomb -------------------------------------------------------------
def _tar(members: list[tuple[str, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=9) as tar:
        for name, size in members:
            info = tarfile.TarInfo(name)
            info.size = size

            class Zeros(io.RawIOBase):
                left = size

                def readable(self) -> bool:
                    return True

                def readinto(self, b: Any) -> int:
                    n = min(len(b), self.left)
                    b[:n] = bytes(n)
                    self.left -= n
                    return n

            tar.addfile(info, io.BufferedReader(Zeros()))
    return buf.getvalue()


def test_snapshot_bombs_are_refused_with_the_numbers(lapis_server: Any, api: httpx.Client) -> None:
    digest = "ab" * 32
    bomb = _tar([("big.bin", 301 * 1024 * 1024)])
    assert len(bomb) < 2 * 1024 * 1024
    body = _error(api.put(f"/api/v1/snapshots/{digest}", content=bomb), 413, "300 MB")
    assert body["error_code"] == "REQUEST_TOO_LARGE"
    many = _tar([(f"f{i}.txt", 0) for i in range(2001)])
    _error(api.put(f"/api/v1/snapshots/{digest}", content=many), 413, "2000 files")
    leftovers = [p for p in (lapis_server.home / "snapshots").glob(".*") if p.is_dir()]
    assert leftovers == []
    assert api.get("/healthz").status_code == 200


# --- 4. YAML alias bomb -------------------------------------------------------------------
BOMB = textwrap.dedent(
    """\
    a: &a ["x","x","x","x","x","x","x","x","x"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
    command: echo
    """
)


def test_yaml_alias_bomb_is_refused_by_server_and_cli(
    lapis_server: Any, api: httpx.Client, tmp_path: Path
) -> None:
    _error(api.post("/api/v1/jobs", json={"yaml": BOMB, "source": "bomb.yml"}), 400, "alias")
    r = api.post("/api/v1/environments", json={"yaml": BOMB, "source": "env.yml"})
    _error(r, 400, "alias")
    recursive = "a: &a [*a]\ncommand: echo\n"
    assert api.post("/api/v1/jobs", json={"yaml": recursive}).status_code == 400
    (tmp_path / "bomb.yml").write_text(BOMB)
    for args in (["job", "create", "-f"], ["compute", "create", "-f"], ["model", "create", "-f"]):
        done = lapis_cli(lapis_server, *args, str(tmp_path / "bomb.yml"))
        assert done.returncode != 0
        assert "alias" in done.stderr + done.stdout
        assert "Traceback" not in done.stderr


# --- 5. job outputs followed symlinks -------------------------------------------------------
def test_job_outputs_never_follow_links(lapis_server: Any, tmp_path: Path) -> None:
    creds = lapis_server.home / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    job_file = write_job(
        tmp_path / "links",
        """\
        command: python make_links.py
        code: .
        environment: system
        outputs:
          model:
            type: uri_folder
        """,
        files={
            "make_links.py": """\
            import os
            os.makedirs("outputs/nested", exist_ok=True)
            open("outputs/real.txt", "w").write("real")
            os.symlink("/etc/passwd", "outputs/passwd")
            os.symlink(os.path.abspath("../../../credentials.json"), "outputs/creds.json")
            os.symlink("/etc", "outputs/etc_dir")
            os.symlink("/etc/hostname", "outputs/nested/host")
            out = os.environ["AZURE_ML_OUTPUT_model"]
            os.symlink("/etc/passwd", os.path.join(out, "passwd"))
            """
        },
    )
    job = wait(lapis_server, submit(lapis_server, job_file)["name"], timeout=120)
    assert job["status"] == "Completed", job["status_reason"]
    with lapis_server.client() as c:
        run = c.get(f"{MLFLOW}/runs/get", params={"run_id": job["run_id"]}).json()["run"]
        root = run["info"]["artifact_uri"].split("mlflow-artifacts:/", 1)[1].lstrip("/")
        listed = c.get(PROXY, params={"path": f"{root}/outputs"}).json()["files"]
        names = {f["path"] for f in listed}
        assert names == {"real.txt"}, names  # nested/ held only a link
        for rel in ("outputs/passwd", "outputs/creds.json", "outputs/nested/host"):
            assert c.get(f"{PROXY}/{root}/{rel}").status_code == 404, rel
        named = c.get(PROXY, params={"path": f"{root}/named-outputs/model"}).json()["files"]
        assert named == []
    log = log_text(lapis_server, job["name"])
    assert "outputs/creds.json is a symbolic link" in log
    assert "named-outputs/model/passwd is a symbolic link to /etc/passwd" in log
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert stat.S_IMODE(os.stat("/etc/passwd").st_mode) == 0o644


# --- 13. a job could change Lapis' own interpreter -----------------------------------------
def _wheel(folder: Path, module: str) -> Path:
    """A minimal pure-Python wheel, so the test installs without a package index."""
    import base64
    import hashlib
    import zipfile

    dist = f"{module}-1.0.dist-info"
    files = {
        f"{module}.py": b"VALUE = 42\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{module}-1.0-py3-none-any.whl"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("environment", ["system", "built"])
def test_pip_install_in_a_job_stays_in_the_job_environment(
    lapis_server: Any, tmp_path: Path, environment: str
) -> None:
    import subprocess
    import sys
    import uuid

    module = f"lapis_probe_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "pip"
    _wheel(folder, module)
    env_yaml = (
        "environment: system\n"
        if environment == "system"
        else "environment:\n  conda_file:\n    dependencies: [python, pip]\n"
    )
    job_file = write_job(
        folder,
        "command: >-\n"
        f"  pip install --no-index {module}-1.0-py3-none-any.whl &&\n"
        f"  python -c 'import {module}, sys; print(\"value\", {module}.VALUE, sys.prefix)'\n"
        "code: .\n" + env_yaml,
    )
    job = wait(lapis_server, submit(lapis_server, job_file)["name"], timeout=240)
    log = log_text(lapis_server, job["name"])
    assert job["status"] == "Completed", log
    assert "value 42" in log
    # neither the server's interpreter nor the host's can import it
    for python in (sys.executable, "/usr/bin/python3"):
        if not Path(python).exists():
            continue
        probe = subprocess.run([python, "-c", f"import {module}"], capture_output=True)
        assert probe.returncode != 0, f"{python} can import {module}"


# --- 6. secrets at rest -------------------------------------------------------------------
def _stored_keys(server: Any, name: str) -> tuple[str, str]:
    query = "select primary_key, secondary_key from online_endpoints where name = %s"
    if server.database_url:
        import psycopg

        url = server.database_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url) as conn:
            row = conn.execute(query, (name,)).fetchone()
    else:
        import sqlite3

        with sqlite3.connect(server.home / "lapis.db") as conn:
            row = conn.execute(query.replace("%s", "?"), (name,)).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


def test_secrets_at_rest(lapis_server: Any, api: httpx.Client) -> None:
    home = lapis_server.home
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in ("credentials.json", "workspace.key", "server.json"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600, name
    if not lapis_server.database_url:
        assert stat.S_IMODE((home / "lapis.db").stat().st_mode) == 0o600
    api.post("/api/v1/endpoints", json={"name": "sealed-keys", "auth_mode": "key"})
    keys = api.post("/api/v1/endpoints/sealed-keys/listKeys").json()
    primary, secondary = _stored_keys(lapis_server, "sealed-keys")
    assert keys["primaryKey"] not in primary and keys["secondaryKey"] not in secondary
    assert primary.startswith("sealed:v1:") and secondary.startswith("sealed:v1:")
    raw = b"".join(p.read_bytes() for p in home.glob("lapis.db*"))
    assert keys["primaryKey"].encode() not in raw
    # the sealed key still opens where it must: the scoring route checks it
    r = httpx.post(
        f"{lapis_server.url}/api/v1/endpoints/sealed-keys/score",
        headers={"Authorization": f"Bearer {keys['primaryKey']}"},
        json={},
    )
    assert r.status_code != 401, r.text


# --- 9. a second server on the same home --------------------------------------------------
def test_second_server_on_the_same_home_is_refused(lapis_server: Any) -> None:
    import json
    import subprocess
    import sys

    info_before = (lapis_server.home / "server.json").read_text()
    done = subprocess.run(
        [sys.executable, "-m", "lapis", "server", "--home", str(lapis_server.home), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    pid = json.loads(info_before)["pid"]
    assert f"in use by process {pid}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert (lapis_server.home / "server.json").read_text() == info_before
    assert httpx.get(f"{lapis_server.url}/healthz").status_code == 200


# --- 8. avoidable 500s ------------------------------------------------------------------------
def test_values_a_store_cannot_keep_are_400s(api: httpx.Client) -> None:
    run_id, _ = _run(api, "holes-500s")
    exp_id = api.get(f"{MLFLOW}/runs/get", params={"run_id": run_id}).json()["run"]["info"][
        "experiment_id"
    ]
    deep = "[" * 1000 + "]" * 1000
    cases: list[tuple[str, str, Any]] = [
        ("POST", f"{MLFLOW}/experiments/create", {"name": "a\u0000b"}),
        ("POST", f"{MLFLOW}/runs/set-tag", {"run_id": run_id, "key": "k\u0000", "value": "v"}),
        ("POST", f"{MLFLOW}/runs/log-parameter", {"run_id": run_id, "key": "p", "value": "\u0000"}),
        ("POST", f"{MLFLOW}/runs/set-tag", {"run_id": run_id, "key": 123, "value": "v"}),
        ("POST", f"{MLFLOW}/runs/log-batch", {"run_id": run_id, "tags": [{"key": 5, "value": 1}]}),
        ("POST", f"{MLFLOW}/experiments/set-experiment-tag", {"experiment_id": exp_id, "key": 7}),
        ("POST", f"{MLFLOW}/runs/create", {"experiment_id": exp_id, "tags": [{"key": 7}]}),
        ("POST", f"{MLFLOW}/registered-models/create", {"name": "m", "tags": [{"key": 7}]}),
        ("POST", f"{MLFLOW}/runs/create", {"experiment_id": exp_id, "start_time": 10**30}),
        ("POST", "/api/v1/runs", {"start_time": 10**30}),
        ("POST", "/api/v1/runs", {"start_time": 2**63}),
        ("POST", "/api/v1/runs", {"run_name": "x\u0000"}),
        ("GET", f"{MLFLOW}/runs/get?run_id=%00", None),
        ("GET", "/api/v1/jobs/%00", None),
        ("GET", f"{MLFLOW}/experiments/get-by-name?experiment_name=a%00", None),
    ]
    for path in (
        f"{MLFLOW}/runs/set-tag",
        f"{MLFLOW}/experiments/create",
        f"{MLFLOW}/runs/create",
        f"{MLFLOW}/runs/log-batch",
        f"{MLFLOW}/registered-models/create",
        "/api/v1/jobs",
        "/api/v1/environments",
        "/api/v1/computes",
    ):
        cases.append(("RAW", path, f'{{"run_id": "{run_id}", "name": {deep}, "tags": {deep}}}'))
    for method, path, body in cases:
        if method == "RAW":
            r = api.post(path, content=body, headers={"content-type": "application/json"})
        else:
            r = api.request(method, path, json=body)
        assert 400 <= r.status_code < 500, (method, path, str(body)[:60], r.status_code, r.text)
        assert r.json()["message"], (method, path)


def test_bodies_over_the_limit_are_413_before_being_read(api: httpx.Client) -> None:
    big = b'{"name": "' + b"x" * (33 * 1024 * 1024) + b'"}'
    r = api.post(f"{MLFLOW}/experiments/create", content=big)
    body = _error(r, 413, "limit")
    assert body["error_code"] == "REQUEST_TOO_LARGE"

    def chunks() -> Any:
        for _ in range(40):
            yield b"x" * (1024 * 1024)

    r = api.post("/api/v1/jobs", content=chunks())  # no Content-Length: counted as it comes
    assert r.status_code == 413, r.text
    assert api.get("/healthz").status_code == 200


def test_a_full_disk_is_507_and_nothing_half_written(tmp_path: Path, server_type: Any) -> None:
    import subprocess

    tiny = tmp_path / "tiny"
    tiny.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(tiny)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"LOUD SKIP: cannot mount a 2 MB tmpfs to fill (needs root): {mounted.stderr!r}"
        )
    server = server_type(home=tmp_path / "home")
    server.start_args = ["--artifact-root", tiny.as_uri()]
    try:
        server.start()
        with server.client() as c:
            _, root = _run(c, "full-disk")
            assert c.put(f"{PROXY}/{root}/small.txt", content=b"fits").status_code == 200
            r = c.put(f"{PROXY}/{root}/big.bin", content=os.urandom(3 * 1024 * 1024))
            body = _error(r, 507, "disk is full")
            assert body["error_code"] == "INSUFFICIENT_STORAGE"
            files = [p.name for p in tiny.rglob("*") if p.is_file()]
            assert files == ["small.txt"], files  # no .part left behind
            assert c.get(f"{PROXY}/{root}/small.txt").content == b"fits"
    finally:
        server.kill9()
        subprocess.run(["umount", "-l", str(tiny)], check=False)


# --- 7. a job could read the server's secrets ------------------------------------------------
SNOOP = """\
import os, pathlib
home = pathlib.Path(os.environ["SNOOP_HOME"])
for name in ("credentials.json", "workspace.key", "lapis.db", "server.json"):
    try:
        (home / name).read_bytes()
        print("READ", name)
    except OSError as exc:
        print("DENIED", name, exc.errno)
try:
    os.kill(int(os.environ["SNOOP_PID"]), 0)
    print("SIGNAL ok")
except OSError:
    print("SIGNAL denied")
import tempfile
with tempfile.NamedTemporaryFile() as fh:
    fh.write(b"scratch works")
open("outputs/ok.txt", "w").write("own folder works")
"""


def test_jobs_cannot_read_the_workspace_secrets(lapis_server: Any, tmp_path: Path) -> None:
    import json

    from lapis.compute import sandbox

    if sandbox.abi_version() == 0:
        pytest.skip("LOUD SKIP: this kernel has no Landlock; jobs run unsandboxed here")
    pid = json.loads((lapis_server.home / "server.json").read_text())["pid"]
    job_file = write_job(
        tmp_path / "snoop",
        f"""\
        command: python snoop.py
        code: .
        environment: system
        environment_variables:
          SNOOP_HOME: {lapis_server.home}
          SNOOP_PID: "{pid}"
        """,
        files={"snoop.py": SNOOP},
    )
    job = wait(lapis_server, submit(lapis_server, job_file)["name"], timeout=120)
    log = log_text(lapis_server, job["name"])
    assert job["status"] == "Completed", log
    for name in ("credentials.json", "workspace.key", "lapis.db", "server.json"):
        assert f"DENIED {name}" in log, log
    assert "READ " not in log
    assert "SIGNAL denied" in log, log  # the server cannot be signalled from a job
    assert "scratch works" not in log  # tempfile worked (no error printed)


SCORE_SNOOP = """\
import json, os


def init():
    pass


def run(raw_data):
    out = {}
    for name in ("credentials.json", "workspace.key", "lapis.db"):
        try:
            open(os.path.join(os.environ["SNOOP_HOME"], name), "rb").read()
            out[name] = "read"
        except OSError:
            out[name] = "denied"
    return out
"""


def test_scoring_code_cannot_read_the_workspace_secrets(lapis_server: Any, tmp_path: Path) -> None:
    import json
    import shutil
    import time
    import uuid

    from lapis.compute import sandbox

    if sandbox.abi_version() == 0:
        pytest.skip("LOUD SKIP: this kernel has no Landlock; scoring runs unsandboxed here")
    example = Path(__file__).resolve().parents[2] / "examples" / "endpoints"
    folder = tmp_path / "ep"
    shutil.copytree(example, folder)
    name = f"snoop-{uuid.uuid4().hex[:6]}"
    (folder / "onlinescoring" / "score.py").write_text(SCORE_SNOOP)
    for yml in folder.glob("*.yml"):
        yml.write_text(yml.read_text().replace("my-endpoint", name))
    blue = folder / "blue.yml"
    text = blue.read_text().replace(
        "environment_variables:\n", f"environment_variables:\n  SNOOP_HOME: {lapis_server.home}\n"
    )
    blue.write_text(text)
    for args in (
        ["online-endpoint", "create", "-f", str(folder / "endpoint.yml")],
        ["online-deployment", "create", "-f", str(blue), "--all-traffic"],
    ):
        done = lapis_cli(lapis_server, *args)
        assert done.returncode == 0, done.stderr
    with lapis_server.client() as c:
        key = c.post(f"/api/v1/endpoints/{name}/listKeys").json()["primaryKey"]
        deadline = time.monotonic() + 90
        while True:
            r = c.post(
                f"/api/v1/endpoints/{name}/score",
                content=json.dumps({"data": [[1, 2, 3]]}),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert r.status_code == 200, r.text
        assert r.json() == {n: "denied" for n in ("credentials.json", "workspace.key", "lapis.db")}
        c.delete(f"/api/v1/endpoints/{name}")
