"""Jobs that lose their node: retried on another node when ``limits.max_retries`` allows it,
and always (up to three tries) when a low-priority cluster's node is pre-empted — here by
the pre-emption drill, ``lapis compute preempt``."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clusterkit import (
    made_cluster,
    nodes,
    one_store,  # noqa: F401  (the module's lapis_server: SQLite)
    studio_state,
    until,
)
from jobkit import lapis_cli, log_text, submit, wait

pytest.importorskip(
    "ray", reason="NOT TESTED: compute clusters need Ray (pip install 'lapis[ray]')"
)
pytestmark = [pytest.mark.timeout(400), pytest.mark.xdist_group("ray-clusters")]


@pytest.fixture
def low(lapis_server: Any, tmp_path: Path) -> Iterator[str]:
    with made_cluster(lapis_server, tmp_path, tier="low_priority") as name:
        yield name


def _twice(tmp_path: Path, cluster: str, extra: str = "") -> Path:
    """A job that stalls on its first try and finishes on its second (a marker file outside
    the job's folder remembers the first)."""
    mark = tmp_path / f"tried-{uuid.uuid4().hex[:6]}"
    job = tmp_path / "job.yml"
    job.write_text(
        "command: >-\n"
        f"  if [ -e {mark} ]; then echo second try; else touch {mark};"
        " echo first try && sleep 300; fi\n"
        f"environment: system\ncompute: azureml:{cluster}\n{extra}"
    )
    return job


def _retried(job: dict[str, Any]) -> list[str]:
    return [e["reason"] for e in job["events"] if (e["reason"] or "").startswith("retry")]


def test_a_job_with_retries_runs_again_on_a_replacement_node(
    lapis_server: Any, tmp_path: Path
) -> None:
    with made_cluster(lapis_server, tmp_path) as cluster:
        name = submit(lapis_server, _twice(tmp_path, cluster, "limits:\n  max_retries: 1\n"))[
            "name"
        ]
        until("the first try", lambda: "first try" in log_text(lapis_server, name), 120)
        folder = lapis_server.home / "clusters" / cluster.lower()
        (node,) = json.loads((folder / "state.json").read_text())["workers"]
        os.killpg(int(node["pid"]), signal.SIGKILL)
        job = wait(lapis_server, name, timeout=240)
        said = [(e["status"], e["reason"]) for e in job["events"]]
        assert job["status"] == "Completed", (said[5:], log_text(lapis_server, name))
        assert "second try" in log_text(lapis_server, name)
        (why,) = _retried(job)
        assert why.startswith(f"retry 1 of 1: node {cluster}-{node['index']} was lost"), why
        # the lost try's log is kept with the job
        kept = lapis_server.home / "jobs" / name / "attempts" / "1" / "user_logs" / "std_log.txt"
        assert "first try" in kept.read_text()


def test_the_preemption_drill_requeues_the_job_of_a_low_priority_node(
    lapis_server: Any, low: str, tmp_path: Path
) -> None:
    name = submit(lapis_server, _twice(tmp_path, low))["name"]
    until("the first try", lambda: "first try" in log_text(lapis_server, name), 120)
    done = lapis_cli(lapis_server, "compute", "preempt", "-n", low, "-o", "json")
    assert done.returncode == 0, done.stderr
    taken = json.loads(done.stdout)["node"]
    job = wait(lapis_server, name, timeout=240)
    assert job["status"] == "Completed", job["status_reason"]
    (why,) = _retried(job)
    assert why == f"retry 1 of 3: node {taken} was pre-empted (low priority)", why
    shown = {n["name"]: n["state"] for n in nodes(lapis_server, low)}
    assert shown[taken] == "Preempted", shown
    page = studio_state(lapis_server, low)  # the studio shows the loss and offers the drill
    assert "Pre-empt a node (drill)" in page and taken in page and "Preempted" in page


def test_a_dedicated_cluster_is_never_preempted(lapis_server: Any, tmp_path: Path) -> None:
    with made_cluster(lapis_server, tmp_path) as cluster:
        done = lapis_cli(lapis_server, "compute", "preempt", "-n", cluster)
        assert done.returncode != 0
        assert "is dedicated; only low_priority nodes are pre-empted" in done.stderr
        assert "Traceback" not in done.stderr


class _DropFirstCalls:
    """A loopback proxy before a real head's job API that hangs up on the first version
    check, and forwards the first job submission then hangs up without its answer: what a
    head under load did to Lapis in CI."""

    def __init__(self, upstream: int) -> None:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.dropped: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                if self.path == "/api/version" and "version" not in proxy.dropped:
                    proxy.dropped.append("version")
                    self.close_connection = True
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request(self.command, self.path, body or None, headers)
                answer = conn.getresponse()
                data = answer.read()
                if self.command == "POST" and "submit" not in proxy.dropped:
                    proxy.dropped.append("submit")  # the head took it; the client never hears
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_submission_whose_answer_was_lost_is_retried_and_made_once(
    lapis_server: Any, tmp_path: Path
) -> None:
    from lapis.compute.ray import nodes as ray_nodes
    from lapis.compute.ray import submit as ray_submit

    with made_cluster(lapis_server, tmp_path) as cluster:
        folder = lapis_server.home / "clusters" / cluster.lower()
        state = json.loads((folder / "state.json").read_text())
        proxy = _DropFirstCalls(int(state["dashboard_port"]))
        try:
            client = ray_submit.job_client(
                f"http://127.0.0.1:{proxy.port}", ray_nodes.headers(folder)
            )
            wanted = f"lapis-drop-{uuid.uuid4().hex[:6]}"
            got = ray_submit.submit_when_ready(
                client, entrypoint="echo once", submission_id=wanted, entrypoint_num_cpus=0
            )
            assert proxy.dropped == ["version", "submit"] and got == wanted
            made = [j for j in client.list_jobs() if j.submission_id == wanted]
            assert len(made) == 1
            until("the job to end", lambda: str(client.get_job_status(wanted)) in
                  ("SUCCEEDED", "JobStatus.SUCCEEDED"), 120)  # fmt: skip
            assert client.get_job_logs(wanted).splitlines().count("once") == 1
        finally:
            proxy.server.shutdown()
