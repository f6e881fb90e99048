"""Online deployments on a real server: instance processes, restarts, rollover, clean-up.

The example in ``examples/endpoints`` is deployed through the CLI; instances
are checked directly on their loopback port (scoring through the endpoint's
URL is the data plane's test).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
from jobkit import http_for, lapis_cli

from lapis.endpoints.control.instance_process import end_leftover, start_time_ms

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "endpoints"
REQUEST = json.loads((EXAMPLE / "sample-request.json").read_text())
MODEL_1 = [4.75, -1.5]  # weights [0.5, -1, 2], bias 0.25 on the sample's two rows
MODEL_2 = [5.2, -2.0]  # weights [0.4, -0.9, 2.2], bias 0


def copy_example(tmp_path: Path) -> tuple[Path, str]:
    """The example with a unique endpoint name (servers are shared by a module's tests)."""
    name = f"ep-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "endpoints"
    shutil.copytree(EXAMPLE, folder)
    for yml in folder.glob("*.yml"):
        yml.write_text(yml.read_text().replace("my-endpoint", name))
    return folder, name


def ok(server: Any, *args: str) -> Any:
    proc = lapis_cli(server, *args, "-o", "json")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def fails(server: Any, *args: str, match: str) -> str:
    proc = lapis_cli(server, *args)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert match in proc.stderr, proc.stderr
    return proc.stderr


def show(server: Any, endpoint: str, name: str) -> dict[str, Any]:
    with http_for(server) as http:
        d: dict[str, Any] = http.get(f"/api/v1/endpoints/{endpoint}/deployments/{name}")
        return d


def until(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def score(port: int) -> Any:
    assert httpx.get(f"http://127.0.0.1:{port}/ready", timeout=10).status_code == 200
    resp = httpx.post(f"http://127.0.0.1:{port}/score", json=REQUEST, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def ready_instance(server: Any, endpoint: str, name: str, generation: int) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        d = show(server, endpoint, name)
        ready = [i for i in d["instances"] if i["ready"] and i["generation"] == generation]
        return ready[0] if ready else None

    found: dict[str, Any] = until(f"{name} generation {generation} ready", check)
    return found


def deployment_log(server: Any, endpoint: str, name: str) -> str:
    return str(ok(server, "online-deployment", "get-logs", "-e", endpoint, "-n", name)["log"])


def test_deploy_restart_roll_over_and_delete(lapis_server: Any, tmp_path: Path) -> None:
    folder, ep = copy_example(tmp_path)
    ok(lapis_server, "online-endpoint", "create", "-f", str(folder / "endpoint.yml"))
    blue = folder / "blue.yml"
    d = ok(lapis_server, "online-deployment", "create", "-f", str(blue), "--all-traffic")
    assert d["provisioning_state"] == "Succeeded", d
    assert d["model"] == f"azureml:{ep}-blue:1" and d["traffic"] == 100
    assert d["request_settings"]["max_concurrent_requests_per_instance"] == 4
    assert d["liveness_probe"]["failure_threshold"] == 30

    first = ready_instance(lapis_server, ep, "blue", 1)
    env = psutil.Process(first["pid"]).environ()
    model_dir = Path(env["AZUREML_MODEL_DIR"])
    assert (model_dir / "model-1" / "model.json").is_file() and env["SCORE_ROUND"] == "3"
    assert score(first["port"]) == MODEL_1
    shown = ok(lapis_server, "online-endpoint", "show", ep)
    assert [x["name"] for x in shown["deployments"]] == ["blue"] and shown["traffic"] == {
        "blue": 100
    }
    lineage = ok(lapis_server, "model", "show", f"{ep}-blue", "--version", "1")["lineage"]
    assert {"endpoint": ep, "deployment": "blue"}.items() <= lineage["deployments"][0].items()
    assert "init: loaded a linear model with 3 weights" in deployment_log(lapis_server, ep, "blue")
    one = ok(lapis_server, "online-deployment", "get-logs", "-e", ep, "-n", "blue", "-i", "0")
    assert "init: loaded" in one["log"] and "deployment.log" not in one["log"]

    # kill -9 an instance: it is restarted, the restart is logged and counted
    os.kill(first["pid"], signal.SIGKILL)
    again = until(
        "the restarted instance",
        lambda: next(
            (
                i
                for i in show(lapis_server, ep, "blue")["instances"]
                if i["ready"] and i["pid"] != first["pid"]
            ),
            None,
        ),
    )
    assert again["restarts"] == 1 and score(again["port"]) == MODEL_1
    log = deployment_log(lapis_server, ep, "blue")
    assert "instance 0 exited (code -9); restarting, restart #1" in log

    # traffic may only name deployments that exist
    fails(
        lapis_server,
        "online-endpoint",
        "update",
        ep,
        "--traffic",
        "blue=50",
        "gren=50",
        match="has no deployment 'gren'",
    )

    # the same file again: the inline model's version is re-used, nothing rolls over
    same = ok(lapis_server, "online-deployment", "update", "-f", str(blue))
    assert same["generation"] == 1 and same["model"] == f"azureml:{ep}-blue:1"
    assert [i["pid"] for i in same["instances"]] == [again["pid"]]

    # update to a new model version: generation 2 takes over, generation 1 is stopped
    blue.write_text(blue.read_text().replace("path: model-1", "path: model-2"))
    d = ok(lapis_server, "online-deployment", "update", "-f", str(blue))
    assert d["provisioning_state"] == "Succeeded" and d["generation"] == 2
    assert d["model"] == f"azureml:{ep}-blue:2"
    new = ready_instance(lapis_server, ep, "blue", 2)
    assert score(new["port"]) == MODEL_2
    until("generation 1 to stop", lambda: gone(again["pid"]))
    assert [i["generation"] for i in show(lapis_server, ep, "blue")["instances"]] == [2]
    assert "generation 1) stopped after draining" in deployment_log(lapis_server, ep, "blue")

    # a deployment that takes traffic cannot be deleted; at 0 % it can, and its process ends
    fails(
        lapis_server,
        "online-deployment",
        "delete",
        "-e",
        ep,
        "-n",
        "blue",
        "--yes",
        match="receives 100% of endpoint",
    )
    ok(lapis_server, "online-endpoint", "update", ep, "--traffic", "blue=0")
    ok(lapis_server, "online-deployment", "delete", "-e", ep, "-n", "blue", "--yes")
    assert gone(new["pid"])
    assert ok(lapis_server, "online-deployment", "list", "-e", ep) == []
    ok(lapis_server, "online-endpoint", "delete", ep, "--yes")


def test_failed_init_is_reported_and_endpoint_delete_stops_instances(
    lapis_server: Any, tmp_path: Path
) -> None:
    folder, ep = copy_example(tmp_path)
    endpoint = folder / "endpoint.yml"
    endpoint.write_text(endpoint.read_text() + "traffic: {green: 100}\n")
    fails(lapis_server, "online-endpoint", "create", "-f", str(endpoint), match="no deployment")
    ok(lapis_server, "online-endpoint", "create", "--name", ep)
    green = ok(lapis_server, "online-deployment", "create", "-f", str(folder / "green.yml"))
    assert green["provisioning_state"] == "Succeeded"
    # instance_count alone: a second instance of the same generation, no rollover
    args = ("online-deployment", "update", "-e", ep, "-n", "green", "--set", "instance_count=2")
    scaled = ok(lapis_server, *args)
    assert scaled["provisioning_state"] == "Succeeded" and scaled["generation"] == 1
    pids = [i["pid"] for i in scaled["instances"] if i["ready"]]
    assert len(pids) == 2

    broken = folder / "broken"
    broken.mkdir()
    (broken / "score.py").write_text(
        "def init():\n    raise RuntimeError('no model here')\n\ndef run(raw):\n    return raw\n"
    )
    spec = folder / "broken.yml"
    spec.write_text(
        (folder / "green.yml")
        .read_text()
        .replace("name: green", "name: broken")
        .replace("code: onlinescoring", "code: broken")
    )
    proc = lapis_cli(lapis_server, "online-deployment", "create", "-f", str(spec))
    assert proc.returncode == 1 and "RuntimeError: no model here" in proc.stderr, proc.stderr
    d = show(lapis_server, ep, "broken")
    assert d["provisioning_state"] == "Failed" and "init() failed" in d["state_reason"]
    fails(lapis_server, "online-deployment", "create", "-f", str(spec), match="already exists")

    # an instance that keeps dying before it ever served: Failed, not restarted forever
    (broken / "score.py").write_text(
        "import os\n\ndef init():\n    os._exit(3)\n\ndef run(r):\n    return r\n"
    )
    crashy = folder / "crashy.yml"
    crashy.write_text(spec.read_text().replace("name: broken", "name: crashy"))
    fails(
        lapis_server,
        "online-deployment",
        "create",
        "-f",
        str(crashy),
        match="exited 3 times while starting (last code 3)",
    )

    # the scoring script must be in the code folder (checked before anything is uploaded)
    spec.write_text(
        spec.read_text().replace("name: broken", "name: typo").replace("score.py", "scor.py")
    )
    fails(lapis_server, "online-deployment", "create", "-f", str(spec), match="scoring_script")

    ok(lapis_server, "online-endpoint", "delete", ep, "--yes")
    until("green's instances to stop", lambda: all(gone(p) for p in pids))
    assert not (lapis_server.home / "deployments" / ep / "green").exists()


def test_server_restart_ends_old_instances_and_starts_new_ones(
    fresh_server: Any, tmp_path: Path
) -> None:
    folder, ep = copy_example(tmp_path)
    ok(fresh_server, "online-endpoint", "create", "-f", str(folder / "endpoint.yml"))
    ok(fresh_server, "online-deployment", "create", "-f", str(folder / "blue.yml"))
    before = ready_instance(fresh_server, ep, "blue", 1)

    fresh_server.port = int(fresh_server.url.rsplit(":", 1)[1])  # come back on the same port
    fresh_server.kill9()
    until("the instance to end with its server", lambda: gone(before["pid"]), timeout=15)
    fresh_server.start()
    after = ready_instance(fresh_server, ep, "blue", 1)
    assert after["pid"] != before["pid"] and score(after["port"]) == MODEL_1

    fresh_server.stop()  # SIGTERM: the server stops its instances on the way out
    until("the instance to end at shutdown", lambda: gone(after["pid"]), timeout=15)


def test_a_leftover_is_ended_only_when_pid_and_start_time_match(tmp_path: Path) -> None:
    code = "import time; time.sleep(60)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--port-file", str(tmp_path / "p")], start_new_session=True
    )
    try:
        until("the child to exec", lambda: "--port-file" in psutil.Process(proc.pid).cmdline())
        started = start_time_ms(proc.pid)
        assert started is not None
        assert not end_leftover(proc.pid, started - 5000)  # a reused pid: left alone
        assert proc.poll() is None
        assert end_leftover(proc.pid, started)
        proc.wait(timeout=10)  # (already reaped by the kill helper: the code is lost)
        assert gone(proc.pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
