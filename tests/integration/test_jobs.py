"""Command jobs end to end: real server, real supervisor and job processes, real mlflow client."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from jobkit import (
    FINAL,
    HOLDING_SLOT,
    create_instance,
    get,
    http_for,
    lapis_cli,
    log_text,
    submit,
    wait,
    write_job,
)

from lapis.sdk import jobs as sdk_jobs

pytestmark = pytest.mark.stores("sqlite", "postgres")

TRAIN = """\
import os, sys
import mlflow

lr, data_file, data_dir, out_dir = sys.argv[1:5]
with mlflow.start_run():
    mlflow.log_param("lr", lr)
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
text = open(data_file).read()
listing = sorted(os.listdir(data_dir))
payload = os.urandom(4096) + text.encode() + ",".join(listing).encode()
with open(os.path.join(out_dir, "model.bin"), "wb") as fh:
    fh.write(payload)
import hashlib
print("sha256", hashlib.sha256(payload).hexdigest())
os.makedirs("outputs", exist_ok=True)
open("outputs/metrics.txt", "w").write("done")
print("trained with lr", lr, "on", len(text), "bytes")
"""


def test_yaml_job_with_inputs_and_outputs(lapis_server: Any, tmp_path: Path) -> None:
    import mlflow

    folder = tmp_path / "proj"
    job_file = write_job(
        folder,
        """\
        $schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
        type: command
        display_name: train-digits
        experiment_name: jobs-e2e
        code: src
        command: >-
          python train.py ${{inputs.lr}} ${{inputs.data}} ${{inputs.folder}}
          ${{outputs.model}} $[[--unused ${{inputs.missing}}]]
        inputs:
          lr: 0.25
          data:
            type: uri_file
            path: data/train.csv
          folder:
            type: uri_folder
            path: data
          missing:
            type: string
            optional: true
        outputs:
          model:
            type: uri_folder
        environment: azureml:system
        compute: azureml:local
        tags:
          team: vision
        """,
        {"src/train.py": TRAIN, "data/train.csv": "a,b\n1,2\n", "data/extra.txt": "x"},
    )
    # the "system" environment is Lapis' own interpreter; its name may carry the prefix too
    job_file.write_text(job_file.read_text().replace("azureml:system", "system"))
    job = submit(lapis_server, job_file)
    assert job["status"] in {"Queued", "Preparing", "Starting", "Running"}
    done = wait(lapis_server, job["name"])
    assert done["status"] == "Completed", (
        done["status_reason"],
        log_text(lapis_server, job["name"]),
    )
    assert done["exit_code"] == 0
    statuses = [e["status"] for e in done["events"]]
    assert statuses == [
        "NotStarted",
        "Queued",
        "Preparing",
        "Starting",
        "Running",
        "Finalizing",
        "Completed",
    ]
    times = [e["time"] for e in done["events"]]
    assert times == sorted(times)
    assert "trained with lr 0.25" in log_text(lapis_server, job["name"])

    client = mlflow.MlflowClient(tracking_uri=lapis_server.url)
    os.environ["MLFLOW_TRACKING_TOKEN"] = lapis_server.token
    try:
        run = client.get_run(done["run_id"])
    finally:
        os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
    assert run.data.params["lr"] == "0.25"
    # the job's own token was revoked when it ended

    job_token = json.loads((lapis_server.home / "jobs" / job["name"] / "job.json").read_text())[
        "env"
    ]["MLFLOW_TRACKING_TOKEN"]
    with http_for(lapis_server) as http:
        import httpx

        r = httpx.get(
            f"{lapis_server.url}/api/v1/jobs/{job['name']}",
            headers={"Authorization": f"Bearer {job_token}"},
        )
    assert r.status_code == 401
    assert run.data.metrics["loss"] == pytest.approx(0.2)
    assert run.info.status == "FINISHED"
    assert run.data.tags["team"] == "vision"
    assert run.data.tags["lapis.job.name"] == job["name"]

    target = tmp_path / "download"
    with http_for(lapis_server) as http:
        sdk_jobs.download(http, job["name"], target)
    model = (target / "named-outputs" / "model" / "model.bin").read_bytes()
    written = log_text(lapis_server, job["name"]).split("sha256 ", 1)[1].split()[0]
    assert hashlib.sha256(model).hexdigest() == written
    # the job folder keeps its logs, not the copies of code, inputs and outputs
    job_folder = lapis_server.home / "jobs" / job["name"]
    assert (job_folder / "user_logs" / "std_log.txt").exists()
    assert not (job_folder / "wd").exists() and not (job_folder / "inputs").exists()
    assert model.endswith(b"a,b\n1,2\nextra.txt,train.csv")
    assert (target / "artifacts" / "outputs" / "metrics.txt").read_text() == "done"
    assert "trained" in (target / "artifacts" / "user_logs" / "std_log.txt").read_text()
    # the user's data was copied for the job, never touched
    assert (folder / "data" / "train.csv").read_text() == "a,b\n1,2\n"


def test_cli_create_stream_show_list(lapis_server: Any, tmp_path: Path) -> None:
    job_file = write_job(
        tmp_path,
        """\
        command: python -c "print('hello from ${{inputs.who}}')"
        inputs:
          who: world
        """,
    )
    res = lapis_cli(
        lapis_server, "job", "create", "-f", str(job_file), "--set", "inputs.who=cli", "--stream"
    )
    assert res.returncode == 0, res.stderr
    assert "hello from cli" in res.stdout
    assert "Completed" in res.stderr
    name = res.stderr.split("Job ", 1)[1].split()[0]  # "Job <name> submitted to local; …"
    listed = json.loads(lapis_cli(lapis_server, "job", "list", "-o", "json").stdout)
    mine = next(j for j in listed if j["name"] == name)
    assert mine["status"] == "Completed" and mine["inputs"]["who"]["value"] == "cli"
    shown = lapis_cli(lapis_server, "job", "show", name)
    assert shown.returncode == 0 and "timeline" in shown.stdout and name in shown.stdout


def test_failed_job_says_why(lapis_server: Any, tmp_path: Path) -> None:
    job_file = write_job(
        tmp_path,
        """\
        code: src
        command: python fail.py
        """,
        {"src/fail.py": "import sys\nprint('loading')\nprint('boom: bad shape')\nsys.exit(3)\n"},
    )
    job = submit(lapis_server, job_file)
    done = wait(lapis_server, job["name"])
    assert done["status"] == "Failed"
    assert done["exit_code"] == 3
    assert "exit code 3" in done["status_reason"]
    assert "boom: bad shape" in done["status_reason"]
    res = lapis_cli(lapis_server, "job", "stream", job["name"])
    assert res.returncode == 1 and "boom: bad shape" in res.stdout


def test_timeout_ends_the_job(lapis_server: Any, tmp_path: Path) -> None:
    job_file = write_job(
        tmp_path,
        """\
        command: sleep 60
        limits:
          timeout: 2
        """,
    )
    job = submit(lapis_server, job_file)
    done = wait(lapis_server, job["name"], timeout=30)
    assert done["status"] == "Failed"
    assert "limits.timeout" in done["status_reason"]
    assert done["end_time"] - done["start_time"] < 20_000


CHILDREN = """\
import os, subprocess, sys, time
pids = [os.getpid()]
pids.append(subprocess.Popen(["sleep", "300"]).pid)
pids.append(subprocess.Popen(["setsid", "sleep", "301"]).pid)
pids.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(302)"]).pid)
inner = subprocess.Popen(["bash", "-c", "sleep 303 & sleep 304 & wait"])
pids.append(inner.pid)
time.sleep(0.5)
with open(sys.argv[1] + ".tmp", "w") as fh:
    fh.write(" ".join(map(str, pids)))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_cancel_ends_the_whole_process_tree(lapis_server: Any, tmp_path: Path) -> None:
    pid_file = tmp_path / "pids.txt"
    job_file = write_job(
        tmp_path,
        f"""\
        code: src
        command: python spawn.py {pid_file}
        """,
        {"src/spawn.py": CHILDREN},
    )
    job = submit(lapis_server, job_file)
    deadline = time.monotonic() + 30
    while not pid_file.exists():
        assert time.monotonic() < deadline, log_text(lapis_server, job["name"])
        time.sleep(0.1)
    pids = [int(p) for p in pid_file.read_text().split()]
    grandchildren = []
    for p in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            grandchildren += [c.pid for c in psutil.Process(p).children(recursive=True)]
    everyone = set(pids) | set(grandchildren)
    assert all(_alive(p) for p in pids)
    res = lapis_cli(lapis_server, "job", "cancel", job["name"])
    assert res.returncode == 0, res.stderr
    done = wait(lapis_server, job["name"], timeout=30)
    assert done["status"] == "Canceled"
    statuses = [e["status"] for e in done["events"]]
    assert "CancelRequested" in statuses
    time.sleep(0.5)
    survivors = [p for p in everyone if _alive(p)]
    assert survivors == [], f"processes survived cancel: {survivors}"
    again = lapis_cli(lapis_server, "job", "cancel", job["name"])
    assert again.returncode == 1 and "already ended" in again.stderr


def test_instance_runs_two_jobs_per_core_in_order(lapis_server: Any, tmp_path: Path) -> None:
    compute = create_instance(lapis_server)
    with http_for(lapis_server) as http:
        http.post(f"/api/v1/computes/{compute}/stop")
        deadline = time.monotonic() + 15
        while http.get(f"/api/v1/computes/{compute}")["state"] != "Stopped":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    job_file = write_job(
        tmp_path,
        f"""\
        command: python -c "import time; time.sleep(1.5)"
        compute: azureml:{compute}
        """,
    )
    names = [submit(lapis_server, job_file)["name"] for _ in range(10)]
    time.sleep(0.5)
    first = get(lapis_server, names[0])
    assert first["status"] == "Queued"
    assert first["status_reason"].startswith(f"instance {compute} is stopped")
    res = lapis_cli(lapis_server, "compute", "start", compute)
    assert res.returncode == 0, res.stderr
    most = 0
    deadline = time.monotonic() + 90
    while True:
        with http_for(lapis_server) as http:  # one query: a consistent snapshot of the queue
            listed = http.get("/api/v1/jobs", compute=compute, max_results=100)["jobs"]
        jobs = sorted(listed, key=lambda j: names.index(j["name"]))
        busy = sum(j["status"] in HOLDING_SLOT for j in jobs)
        most = max(most, busy)
        assert busy <= 2, [(j["name"], j["status"]) for j in jobs]
        waiting = [j for j in jobs if j["status"] == "Queued"]
        if busy == 2 and waiting:
            assert f"2/2 slots busy on {compute}" in waiting[0]["status_reason"]
        if all(j["status"] in FINAL for j in jobs):
            break
        assert time.monotonic() < deadline, "jobs did not finish"
        time.sleep(0.05)
    assert most == 2
    assert all(j["status"] == "Completed" for j in jobs)
    jobs = [get(lapis_server, n) for n in names]
    started = [next(e["time"] for e in j["events"] if e["status"] == "Preparing") for j in jobs]
    assert started == sorted(started), "the queue did not keep submission order"
    shown = lapis_cli(lapis_server, "compute", "show", compute, "-o", "json")
    assert shown.returncode == 0, shown.stderr


def test_bad_job_files_are_refused_with_file_and_line(lapis_server: Any, tmp_path: Path) -> None:
    cases = {
        "unknown_key.yml": ("command: echo hi\ncomand: typo\n", ["unknown_key.yml:2", "comand"]),
        "dangling.yml": ("command: echo ${{inputs.x}}\n", ["dangling.yml:1", "inputs.x"]),
        "malformed.yml": ("command: echo hi\ninputs: [1, 2\n", ["malformed.yml"]),
        "compute.yml": ("command: echo hi\ncompute: azureml:nope-nope\n", ["nope-nope"]),
        "wrongtype.yml": ("command: echo hi\nlimits:\n  timeout: soon\n", ["wrongtype.yml:3"]),
        "reserved.yml": (
            "command: echo ${{inputs.outputs}}\ninputs:\n  outputs: 1\n",
            ["reserved.yml:3", "reserved"],
        ),
    }
    for filename, (text, expected) in cases.items():
        path = tmp_path / filename
        path.write_text(text)
        res = lapis_cli(lapis_server, "job", "create", "-f", str(path))
        assert res.returncode == 1, (filename, res.stdout, res.stderr)
        assert "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) <= 3, res.stderr
        for piece in expected:
            assert piece in res.stderr, (filename, res.stderr)
    with http_for(lapis_server) as http:
        jobs = http.get("/api/v1/jobs", max_results=1000)["jobs"]
    assert not any(j["command"] == "echo hi" for j in jobs), "a refused job was stored"


def test_logs_folder_is_uploaded_while_the_job_runs(lapis_server: Any, tmp_path: Path) -> None:
    job_file = write_job(
        tmp_path,
        """\
        code: src
        command: python progress.py
        """,
        {
            "src/progress.py": (
                "import time\n"
                "open('logs/progress.txt', 'w').write('epoch 1 of 3')\n"
                "time.sleep(20)\n"
            )
        },
    )
    name = submit(lapis_server, job_file)["name"]
    deadline = time.monotonic() + 15
    while True:
        with http_for(lapis_server) as http:
            files = {f["path"] for f in http.get(f"/api/v1/jobs/{name}/files")["files"]}
        if "logs/progress.txt" in files:
            break
        assert time.monotonic() < deadline, f"logs/ not uploaded while running: {files}"
        time.sleep(0.2)
    assert get(lapis_server, name)["status"] == "Running"
    with http_for(lapis_server) as http:
        http.post(f"/api/v1/jobs/{name}/cancel")
    assert wait(lapis_server, name)["status"] == "Canceled"
