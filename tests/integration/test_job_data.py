"""Jobs read data by reference and write outputs that become data assets, on the
workspace's own datastore: a folder uploaded as an asset is read at ``@latest`` in
each mode (``ro_mount`` in place and read-only, ``download``, ``direct``), an output
with ``name:`` is registered when the job completes, and a second job reads it by
``azureml://jobs/<job>/outputs/<o>`` and by its asset name. Mistakes are one line at
submission; a missing path fails the job with the reason."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from clusterkit import json_cli
from jobkit import get, http_for, lapis_cli, log_text, submit, wait, write_job

READER = """
import os, sys, pathlib
mode, path = sys.argv[1], sys.argv[2]
if mode == "direct":
    import fsspec
    fs, root = fsspec.core.url_to_fs(path)
    names = sorted(p[len(root):].lstrip("/") for p in fs.find(root))
    text = fs.cat(root.rstrip("/") + "/heart.csv").decode()
else:
    root = pathlib.Path(path)
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    text = (root / "heart.csv").read_text()
    try:
        (root / "heart.csv").write_text("changed")
        print("write: allowed")
    except OSError as exc:
        print("write: refused", type(exc).__name__)
print("files:", ",".join(names))
print("rows:", len(text.strip().splitlines()) - 1)
out = os.environ.get("AZURE_ML_OUTPUT_summary")
if out:
    pathlib.Path(out, "summary.txt").write_text(f"{len(names)} files\\n")
"""


def _asset(server: Any, tmp_path: Path, rows: int) -> str:
    folder = tmp_path / f"heart{rows}"
    (folder / "raw").mkdir(parents=True)
    (folder / "heart.csv").write_text("age,chol\n" + "".join(f"{60 + i},{200 + i}\n"
                                                          for i in range(rows)))  # fmt: skip
    (folder / "raw" / "notes.txt").write_text("from UCI\n")
    return str(folder)


def _job(tmp_path: Path, path: str, mode: str, outputs: str = "", env: str = "") -> Path:
    return write_job(
        tmp_path / f"job-{uuid.uuid4().hex[:6]}",
        f"""
        command: python read.py {mode} ${{{{inputs.data}}}}
        code: .
        inputs:
          data:
            type: uri_folder
            path: {path}
            mode: {mode}
        {outputs}
        {env}
        environment: system
        compute: local
        experiment_name: job-data
        """,
        {"read.py": READER},
    )


def test_an_asset_read_in_each_mode_and_an_output_registered(
    lapis_server: Any, tmp_path: Path
) -> None:
    name = f"heart-{uuid.uuid4().hex[:6]}"
    for rows in (2, 3):  # two versions: @latest is the second
        made = json_cli(lapis_server, "data", "create", "-n", name, "--type", "uri_folder",
                        "--path", _asset(lapis_server, tmp_path, rows))  # fmt: skip
    assert made["version"] == "2"
    logs = {}
    for mode in ("ro_mount", "download", "direct"):
        job = submit(lapis_server, _job(tmp_path, f"azureml:{name}@latest", mode))
        done = wait(lapis_server, job["name"], timeout=120)
        logs[mode] = log_text(lapis_server, job["name"])
        assert done["status"] == "Completed", (done["status_reason"], logs[mode])
        assert "files: heart.csv,raw/notes.txt" in logs[mode] and "rows: 3" in logs[mode]
        shown = get(lapis_server, job["name"])["inputs"]["data"]
        assert shown["asset"] == f"{name}:2" and shown["mode"] == mode
        assert shown["uri"].startswith("azureml://datastores/workspaceblobstore/paths/LocalUpload/")
    with http_for(lapis_server) as http:  # lineage: the three jobs read version 2
        readers = http.get(f"/api/v1/data/{name}/jobs")["jobs"]
    assert [(r["input"], r["version"]) for r in readers] == [("data", "2")] * 3
    shown = lapis_cli(lapis_server, "data", "show", "-n", name)
    assert shown.stdout.count("Read by job") == 3, shown.stdout
    assert "read in place, read-only" in logs["ro_mount"]
    assert "write: refused" in logs["ro_mount"]  # the sandbox's read-only grant (even as root)
    assert "downloaded 2 files" in logs["download"]

    out_name = f"summary-{uuid.uuid4().hex[:6]}"
    outputs = (
        f"outputs:\n          summary:\n            type: uri_folder\n            name: {out_name}"
    )
    first = submit(lapis_server, _job(tmp_path, f"azureml:{name}:1", "download", outputs))
    done = wait(lapis_server, first["name"], timeout=120)
    assert done["status"] == "Completed", (
        done["status_reason"],
        log_text(lapis_server, first["name"]),
    )
    registered = json_cli(lapis_server, "data", "show", "-n", out_name)
    assert registered["version"] == "1" and registered["job"] == first["name"]
    # written where Azure writes an output without path: the default datastore
    kept = f"azureml/{first['name']}/summary"
    assert registered["path"] == f"azureml://datastores/workspaceblobstore/paths/{kept}/"
    assert f"output summary: 1 files written to {registered['path']}" in log_text(
        lapis_server, first["name"]
    )
    browsed = json_cli(lapis_server, "datastore", "browse", "workspaceblobstore", "--path", kept)
    assert [e["path"].rsplit("/", 1)[-1] for e in browsed] == ["summary.txt"], browsed
    got = lapis_cli(lapis_server, "job", "download", first["name"], "--output-name", "summary",
                    "--download-path", str(tmp_path / "dl"))  # fmt: skip
    assert got.returncode == 0, got.stderr
    text = (tmp_path / "dl" / "named-outputs" / "summary" / "summary.txt").read_text()
    assert text.strip() == "2 files"
    with lapis_server.client() as http:
        listed = http.get(f"/api/v1/jobs/{first['name']}/files").json()
        assert listed["stored_outputs"] == {"summary": registered["path"]}
        assert not any(f["path"].startswith("named-outputs/") for f in listed["files"])
        files = http.get(f"/api/v1/jobs/{first['name']}/outputs/summary/files").json()["files"]
        assert [f["path"] for f in files] == ["summary.txt"]
        missing = http.get(f"/api/v1/jobs/{first['name']}/outputs/summary/files/nope.txt")
        assert missing.status_code == 404 and "nope.txt" in missing.json()["message"]
        sneaky = http.get(f"/api/v1/jobs/{first['name']}/outputs/summary/files/../../x")
        assert sneaky.status_code in (400, 404)

    reader = """
    import sys, pathlib
    for p in sys.argv[1:]:
        print("summary:", (pathlib.Path(p) / "summary.txt").read_text().strip())
    """
    second = write_job(
        tmp_path / "second",
        f"""
        command: python show.py ${{{{inputs.by_job}}}} ${{{{inputs.by_asset}}}}
        code: .
        inputs:
          by_job:
            type: uri_folder
            path: azureml://jobs/{first["name"]}/outputs/summary
          by_asset:
            path: azureml:{out_name}@latest
            mode: download
        environment: system
        compute: local
        """,
        {"show.py": reader},
    )
    job = submit(lapis_server, second)
    done = wait(lapis_server, job["name"], timeout=120)
    log = log_text(lapis_server, job["name"])
    assert done["status"] == "Completed", (done["status_reason"], log)
    assert log.count("summary: 2 files") == 2, log


def test_mistakes_are_one_line_at_submission_and_missing_data_fails_the_job(
    lapis_server: Any, tmp_path: Path
) -> None:
    for path, mode, says in (
        ("azureml:no-such-asset@latest", "ro_mount", "Data asset 'no-such-asset' not found"),
        ("azureml://datastores/nosuch/paths/x", "ro_mount", "Datastore 'nosuch' not found"),
        ("ftp://host/x", "download", "the ftp:// scheme is not supported"),
        ("azureml://jobs/no_such_job/outputs/x", "download", "no_such_job"),
        ("azureml://datastores/workspaceblobstore/paths/x", "rw_mount", "rw_mount is for outputs"),
    ):
        done = lapis_cli(lapis_server, "job", "create", "-f", str(_job(tmp_path, path, mode)))
        assert done.returncode != 0 and says in done.stderr, (path, done.stderr)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1

    missing = "azureml://datastores/workspaceblobstore/paths/never/uploaded"
    job = submit(lapis_server, _job(tmp_path, missing, "download"))
    done = wait(lapis_server, job["name"], timeout=120)
    assert done["status"] == "Failed"
    assert done["status_reason"] == f"input data: {missing} does not exist", done["status_reason"]


def test_the_sdk_reads_an_asset_and_registers_an_output(lapis_server: Any, tmp_path: Path) -> None:
    """As an azure-ai-ml script: Data, Input(path="azureml:…", mode=…), Output(name=…),
    then ml.data.get and ml.data.download of what the job made."""
    from lapis.ml import Input, MLClient, Output, command
    from lapis.ml.constants import AssetTypes, InputOutputModes
    from lapis.ml.entities import Data

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "copy.py").write_text(
        "import shutil, sys\nshutil.copy(sys.argv[1] + '/heart.csv', sys.argv[2])\n"
    )
    name, out = f"sdk-heart-{uuid.uuid4().hex[:6]}", f"sdk-copy-{uuid.uuid4().hex[:6]}"
    with MLClient(lapis_server.url, lapis_server.token) as ml:
        made = ml.data.create_or_update(
            Data(name=name, type=AssetTypes.URI_FOLDER, path=_asset(lapis_server, tmp_path, 4))
        )
        assert made.version == "1"
        job = command(
            code=str(tmp_path / "src"),
            command="python copy.py ${{inputs.heart}} ${{outputs.copied}}",
            inputs={
                "heart": Input(
                    type=AssetTypes.URI_FOLDER,
                    path=f"azureml:{name}@latest",
                    mode=InputOutputModes.DOWNLOAD,
                )
            },
            outputs={"copied": Output(type=AssetTypes.URI_FOLDER, name=out)},
            environment="system",
            compute="local",
        )
        returned = ml.jobs.create_or_update(job)
        done = wait(lapis_server, returned.name, timeout=120)
        assert done["status"] == "Completed", done["status_reason"]
        registered = ml.data.get(out, label="latest")
        want = f"azureml://datastores/workspaceblobstore/paths/azureml/{returned.name}/copied/"
        assert registered.path == want
        ml.data.download(out, download_path=tmp_path / "got")
    assert (tmp_path / "got" / out / "heart.csv").read_text().count("\n") == 5
