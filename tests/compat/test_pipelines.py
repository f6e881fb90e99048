"""Pipeline jobs in Azure's shapes, run end to end: steps from component files, registered
components and inline commands; their order from the wiring; a parent output; a failing
step with and without continue_on_step_failure; cancel; a kill -9 of the server
mid-pipeline; and the steps as ``lapis job show`` and the studio show them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from clusterkit import json_cli, made_cluster
from jobkit import create_instance, get, lapis_cli, log_text, submit, wait

FILES = Path(__file__).parent / "files"
FINAL = {"Completed", "Failed", "Canceled"}
pytestmark = pytest.mark.timeout(600)


def _pipeline(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"pipeline-{uuid.uuid4().hex[:6]}.yml"
    path.write_text(textwrap.dedent(text))
    return path


def test_train_score_evaluate_runs_in_wiring_order(lapis_server: Any, tmp_path: Path) -> None:
    parent = submit(lapis_server, FILES / "pipelines" / "train-score-eval.yml")
    assert parent["type"] == "pipeline"
    done = wait(lapis_server, parent["name"], timeout=400)
    assert done["status"] == "Completed", done["status_reason"]
    steps = {s["name"]: s for s in json_cli(lapis_server, "job", "show", parent["name"])["steps"]}
    assert list(steps) == ["train_job", "score_job", "evaluate_job", "report_job"] or set(
        steps) == {"train_job", "score_job", "evaluate_job", "report_job"}  # fmt: skip
    jobs = {n: get(lapis_server, s["job"]) for n, s in steps.items()}
    assert all(j["status"] == "Completed" for j in jobs.values()), jobs
    assert jobs["train_job"]["name"] == f"{parent['name']}-train_job"
    assert jobs["score_job"]["start_time"] >= jobs["train_job"]["end_time"]
    assert jobs["evaluate_job"]["start_time"] >= jobs["score_job"]["end_time"]
    assert jobs["report_job"]["start_time"] >= jobs["train_job"]["end_time"]
    # the parent's input (20 epochs) and the step's literal (0.05) reached the command, and
    # the model flowed train → score → evaluate through the steps' outputs
    assert "epochs=20 lr=0.05" in log_text(lapis_server, jobs["evaluate_job"]["name"])
    shown = lapis_cli(lapis_server, "job", "show", parent["name"])
    assert shown.returncode == 0 and "steps" in shown.stdout and "evaluate_job" in shown.stdout
    # the pipeline's output is the train step's
    out = tmp_path / "dl"
    got = lapis_cli(lapis_server, "job", "download", parent["name"], "--output-name",
                    "pipeline_job_trained_model", "--download-path", str(out))  # fmt: skip
    assert got.returncode == 0, got.stderr
    model = out / "named-outputs" / "pipeline_job_trained_model" / "model.txt"
    assert model.read_text().strip() == "epochs=20 lr=0.05"
    with lapis_server.client() as http:
        run = http.get("/api/2.0/mlflow/runs/get", params={"run_id": jobs["score_job"]["run_id"]})
        tags = {t["key"]: t["value"] for t in run.json()["run"]["data"]["tags"]}
    assert tags["mlflow.parentRunId"] == parent["run_id"]


def test_a_failing_step_stops_the_pipeline_or_only_what_depends_on_it(
    lapis_server: Any, tmp_path: Path
) -> None:
    comp = f"echo_{uuid.uuid4().hex[:6]}"
    (tmp_path / "echo.yml").write_text(
        f"name: {comp}\nversion: '1'\ninputs:\n  word: {{type: string, default: hi}}\n"
        "command: echo said ${{inputs.word}}\nenvironment: system\n"
    )
    assert json_cli(lapis_server, "component", "create", "-f", str(tmp_path / "echo.yml"))
    body = f"""\
        type: pipeline
        settings: {{default_compute: local, continue_on_step_failure: CONTINUE, force_rerun: true}}
        jobs:
          broken:
            command: echo about to fail ${{{{outputs.o}}}}; exit 3
            outputs: {{o: {{type: uri_folder}}}}
          fine:
            component: azureml:{comp}@latest
            inputs: {{word: registered}}
          after_broken:
            command: echo never ${{{{inputs.x}}}}
            inputs:
              x: ${{{{parent.jobs.broken.outputs.o}}}}
        """
    stop = submit(lapis_server, _pipeline(tmp_path, body.replace("CONTINUE", "false")))
    done = wait(lapis_server, stop["name"], timeout=300)
    assert done["status"] == "Failed" and done["status_reason"].startswith("step broken failed")
    steps = {s["name"]: s for s in json_cli(lapis_server, "job", "show", stop["name"])["steps"]}
    assert steps["after_broken"]["job"] is None  # never submitted

    go_on = submit(lapis_server, _pipeline(tmp_path, body.replace("CONTINUE", "true")))
    done = wait(lapis_server, go_on["name"], timeout=300)
    assert done["status"] == "Failed"
    assert done["status_reason"] == "steps failed: broken; not run: after_broken"
    steps = {s["name"]: s for s in json_cli(lapis_server, "job", "show", go_on["name"])["steps"]}
    assert steps["fine"]["status"] == "Completed" and steps["after_broken"]["status"] == "Skipped"
    assert "said registered" in log_text(lapis_server, steps["fine"]["job"])


def test_a_pipeline_goes_on_across_a_kill_9_and_cancel_stops_its_steps(
    fresh_server: Any, tmp_path: Path
) -> None:
    body = """\
        type: pipeline
        jobs:
          first:
            command: echo first ${{outputs.o}}
            outputs: {o: {type: uri_folder}}
          slow:
            command: echo slow ${{inputs.x}} && sleep 120
            inputs:
              x: ${{parent.jobs.first.outputs.o}}
        """
    parent = submit(fresh_server, _pipeline(tmp_path, body))["name"]
    deadline = time.monotonic() + 120
    slow = f"{parent}-slow"
    while True:
        with fresh_server.client() as http:
            seen = http.get(f"/api/v1/jobs/{slow}")
        if seen.status_code == 200 and seen.json()["status"] == "Running":
            break
        assert time.monotonic() < deadline, "the second step never started"
        time.sleep(0.5)
    fresh_server.kill9()
    fresh_server.start()
    assert get(fresh_server, f"{parent}-first")["status"] == "Completed"
    cancel = lapis_cli(fresh_server, "job", "cancel", parent)
    assert cancel.returncode == 0, cancel.stderr
    done = wait(fresh_server, parent, timeout=120)
    assert done["status"] == "Canceled", done["status_reason"]
    assert get(fresh_server, slow)["status"] == "Canceled"
    with fresh_server.client() as http:
        names = [
            j["name"] for j in http.get("/api/v1/jobs", params={"max_results": 50}).json()["jobs"]
        ]
    assert sorted(n for n in names if n.startswith(parent)) == sorted(
        [parent, f"{parent}-first", slow]
    )


def test_pipeline_mistakes_are_one_line_before_anything_runs(
    lapis_server: Any, tmp_path: Path
) -> None:
    bad = _pipeline(tmp_path, """\
        type: pipeline
        jobs:
          a:
            command: echo ${{inputs.x}}
            inputs:
              x: ${{parent.jobs.nope.outputs.o}}
        """)  # fmt: skip
    with lapis_server.client() as http:
        before = len(http.get("/api/v1/jobs", params={"max_results": 1000}).json()["jobs"])
    done = lapis_cli(lapis_server, "job", "create", "-f", str(bad))
    assert done.returncode == 1 and f"{bad}:6" in done.stderr and "no step 'nope'" in done.stderr
    assert "Traceback" not in done.stderr
    with lapis_server.client() as http:  # the server checks too
        r = http.post("/api/v1/jobs", json={"yaml": bad.read_text(), "source": "p.yml"})
        assert r.status_code == 400 and "p.yml:6" in r.json()["message"]
        after = len(http.get("/api/v1/jobs", params={"max_results": 1000}).json()["jobs"])
    assert after == before  # nothing was recorded: no parent, no step


def _reuse_pipeline(tmp_path: Path, nonce: str, lr: str, force: bool = False) -> Path:
    """prep writes a stamp no rerun could repeat; train copies it beside its learning rate;
    note is not deterministic, so it always runs. A local data folder feeds prep."""
    data = tmp_path / "reuse-data"
    data.mkdir(exist_ok=True)
    (data / "rows.csv").write_text(f"{nonce}\n1,2\n")
    return _pipeline(tmp_path, f"""\
        type: pipeline
        settings: {{default_compute: local, force_rerun: {str(force).lower()}}}
        inputs:
          rows: {{type: uri_folder, path: {data}}}
          lr: {lr}
        outputs:
          model: {{mode: upload}}
        jobs:
          prep:
            command: >-
              python -c "import time,sys; open(sys.argv[1] + '/stamp.txt', 'w')
              .write(str(time.time_ns()))" ${{{{outputs.o}}}} && cat ${{{{inputs.rows}}}}/rows.csv
            environment: system
            inputs: {{rows: '${{{{parent.inputs.rows}}}}'}}
            outputs: {{o: {{type: uri_folder}}}}
          train:
            command: >-
              cp ${{{{inputs.prepped}}}}/stamp.txt ${{{{outputs.m}}}}/ &&
              echo ${{{{inputs.lr}}}} > ${{{{outputs.m}}}}/lr.txt
            inputs:
              prepped: ${{{{parent.jobs.prep.outputs.o}}}}
              lr: ${{{{parent.inputs.lr}}}}
            outputs: {{m: '${{{{parent.outputs.model}}}}'}}
          note:
            command: echo note ${{{{inputs.m}}}}
            is_deterministic: false
            inputs: {{m: '${{{{parent.jobs.train.outputs.m}}}}'}}
        """)  # fmt: skip


def _steps(server: Any, parent: str) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in json_cli(server, "job", "show", parent)["steps"]}


def _model(server: Any, parent: str, into: Path) -> tuple[str, str]:
    got = lapis_cli(server, "job", "download", parent, "--output-name", "model",
                    "--download-path", str(into))  # fmt: skip
    assert got.returncode == 0, got.stderr
    folder = into / "named-outputs" / "model"
    return (folder / "stamp.txt").read_text(), (folder / "lr.txt").read_text().strip()


@pytest.mark.stores("sqlite", "postgres")  # the reuse look-up is a query on the job store
def test_an_unchanged_step_is_reused_and_force_rerun_runs_everything(
    lapis_server: Any, tmp_path: Path
) -> None:
    nonce = uuid.uuid4().hex
    first = submit(lapis_server, _reuse_pipeline(tmp_path, nonce, "0.1"))["name"]
    done = wait(lapis_server, first, timeout=300)
    assert done["status"] == "Completed", done["status_reason"]
    ran = _steps(lapis_server, first)
    assert not any(s["reused_from"] for s in ran.values())
    stamp, lr = _model(lapis_server, first, tmp_path / "first")
    assert lr == "0.1"

    # the same file again (its local data uploaded again, to the same content address):
    # prep and train are reused, note runs; the pipeline's output is the first run's
    again = submit(lapis_server, _reuse_pipeline(tmp_path, nonce, "0.1"))["name"]
    done = wait(lapis_server, again, timeout=300)
    assert done["status"] == "Completed", done["status_reason"]
    steps = _steps(lapis_server, again)
    assert steps["prep"]["reused_from"] == f"{first}-prep"
    assert steps["train"]["reused_from"] == f"{first}-train"
    assert steps["prep"]["reason"] == (
        f"reused from job {first}-prep (step prep of pipeline {first}): same component "
        "inline (prep), same environment, code and inputs"
    )
    assert steps["note"]["reused_from"] is None and steps["note"]["status"] == "Completed"
    assert "note" in log_text(lapis_server, steps["note"]["job"])
    assert _model(lapis_server, again, tmp_path / "again") == (stamp, "0.1")
    shown = lapis_cli(lapis_server, "job", "show", again)
    assert "reused" in shown.stdout and f"{first}-prep" in shown.stdout
    # any step's output, by step.output (or the output's name when one step has it): a
    # reused step's is the original job's
    for wanted in ("prep.o", "o"):
        into = tmp_path / f"step-{wanted}"
        got = lapis_cli(lapis_server, "job", "download", again, "--output-name", wanted,
                        "--download-path", str(into))  # fmt: skip
        assert got.returncode == 0, got.stderr
        assert (into / "named-outputs" / "o" / "stamp.txt").read_text() == stamp
    wrong = lapis_cli(lapis_server, "job", "download", again, "--output-name", "nope",
                      "--download-path", str(tmp_path / "x"))  # fmt: skip
    assert wrong.returncode == 1 and "prep.o, train.m" in wrong.stderr, wrong.stderr

    # a changed parent input reruns the step that reads it, and only that one
    changed = submit(lapis_server, _reuse_pipeline(tmp_path, nonce, "0.2"))["name"]
    assert wait(lapis_server, changed, timeout=300)["status"] == "Completed"
    steps = _steps(lapis_server, changed)
    assert steps["prep"]["reused_from"] == f"{first}-prep"
    assert steps["train"]["reused_from"] is None
    assert _model(lapis_server, changed, tmp_path / "changed") == (stamp, "0.2")

    # force_rerun: every step runs, and the stamp is new
    forced = submit(lapis_server, _reuse_pipeline(tmp_path, nonce, "0.1", force=True))["name"]
    assert wait(lapis_server, forced, timeout=300)["status"] == "Completed"
    assert not any(s["reused_from"] for s in _steps(lapis_server, forced).values())
    new_stamp, _ = _model(lapis_server, forced, tmp_path / "forced")
    assert new_stamp != stamp


def test_the_same_pipeline_written_with_at_pipeline_runs_and_streams(
    lapis_server: Any, tmp_path: Path
) -> None:
    """tests/compat/files/pipelines/dsl_pipeline.py: train-score-eval.yml in Python —
    load_component, a registered component from client.components, a command(...) called
    as a step, settings and output mode set on the PipelineJob, jobs.stream of it."""
    wrote = lapis_cli(lapis_server, "auth", "config-file", "--path", str(tmp_path))
    assert wrote.returncode == 0, wrote.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAPIS_")}
    env["LAPIS_TOKEN"] = lapis_server.token
    env["LAPIS_HOME"] = str(tmp_path / "not-a-workspace")
    component = f"score_dsl_{uuid.uuid4().hex[:6]}"
    script = FILES / "pipelines" / "dsl_pipeline.py"
    done = subprocess.run([sys.executable, str(script), str(tmp_path), component],
                          cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=400)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["status"] == "Completed", done.stdout
    assert summary["steps"] == ["evaluate_job", "score_job", "train_job"]  # variables' names
    # the stream: each step's status and its log lines, prefixed with the step
    said = done.stdout
    # its first status line comes before its log (NotStarted, or whatever the stream's
    # first look found: on a loaded runner the step may be Queued or Running already)
    first = re.search(
        r"\[train_job\] (NotStarted|Queued|Preparing|Provisioning|Starting|Running|Finalizing)",
        said,
    )
    assert first is not None, said
    assert first.start() < said.index("train_job | [lapis] output")
    assert said.index("train_job | [lapis] output") < said.index("[train_job] Completed")
    assert said.index("[train_job] Completed") < said.index("[score_job] Completed")
    assert "evaluate_job | epochs=20 lr=0.05" in said and "[evaluate_job] Completed" in said, said
    steps = _steps(lapis_server, summary["name"])
    assert steps["score_job"]["component"] == f"azureml:{component}:1"
    assert steps["train_job"]["after"] == [] and steps["evaluate_job"]["after"] == ["score_job"]
    parent = get(lapis_server, summary["name"])
    assert parent["display_name"] == "train_score_evaluate"
    out = tmp_path / "dl"
    got = lapis_cli(lapis_server, "job", "download", summary["name"], "--output-name",
                    "pipeline_job_trained_model", "--download-path", str(out))  # fmt: skip
    assert got.returncode == 0, got.stderr
    model = out / "named-outputs" / "pipeline_job_trained_model" / "model.txt"
    assert model.read_text().strip() == "epochs=20 lr=0.05"
    # lapis job stream of an ended pipeline replays its steps
    replay = lapis_cli(lapis_server, "job", "stream", summary["name"])
    assert replay.returncode == 0 and "score_job | " not in replay.stderr
    assert "[score_job] Completed" in replay.stdout and "evaluate_job | epochs=20" in replay.stdout


@pytest.mark.xdist_group("ray-clusters")
def test_steps_run_on_an_instance_a_cluster_and_local(lapis_server: Any, tmp_path: Path) -> None:
    """Per-step compute: the first step on a compute instance, the second on a Ray cluster
    reading the first's output, the third on the workspace's local compute."""
    instance = create_instance(lapis_server)
    with made_cluster(lapis_server, tmp_path) as cluster:
        body = f"""\
            type: pipeline
            settings: {{default_compute: local, force_rerun: true}}
            jobs:
              on_instance:
                command: echo from-instance > ${{{{outputs.o}}}}/said.txt
                compute: azureml:{instance}
                outputs: {{o: {{type: uri_folder}}}}
              on_cluster:
                command: cat ${{{{inputs.x}}}}/said.txt > ${{{{outputs.o}}}}/said.txt &&
                  echo from-cluster >> ${{{{outputs.o}}}}/said.txt
                compute: azureml:{cluster}
                inputs: {{x: '${{{{parent.jobs.on_instance.outputs.o}}}}'}}
                outputs: {{o: {{type: uri_folder}}}}
              locally:
                command: cat ${{{{inputs.x}}}}/said.txt
                inputs: {{x: '${{{{parent.jobs.on_cluster.outputs.o}}}}'}}
            """
        parent = submit(lapis_server, _pipeline(tmp_path, body))["name"]
        done = wait(lapis_server, parent, timeout=400)
        assert done["status"] == "Completed", done["status_reason"]
    steps = _steps(lapis_server, parent)
    computes = {n: get(lapis_server, s["job"])["compute"] for n, s in steps.items()}
    assert computes == {"on_instance": instance, "on_cluster": cluster, "locally": "local"}
    said = log_text(lapis_server, steps["locally"]["job"])
    assert "from-instance\nfrom-cluster" in said, said


def test_a_steps_own_limits_and_resources_reach_its_job(lapis_server: Any, tmp_path: Path) -> None:
    body = """\
        type: pipeline
        settings: {force_rerun: true}
        jobs:
          slow:
            command: sleep 60
            limits: {timeout: 2}
          sized:
            command: echo sized
            resources: {instance_type: Standard_DS2_v2}
        """
    parent = submit(lapis_server, _pipeline(tmp_path, body))["name"]
    done = wait(lapis_server, parent, timeout=120)
    assert done["status"] == "Failed" and done["status_reason"].startswith("step slow failed")
    slow = get(lapis_server, f"{parent}-slow")
    assert slow["timeout_seconds"] == 2 and "timeout" in slow["status_reason"].lower(), slow
    # a continue_on_step_failure-less pipeline cancels what still runs; sized may have
    # finished first: either way its job was made with the step's resources accepted
    assert get(lapis_server, f"{parent}-sized")["status"] in ("Completed", "Canceled")
