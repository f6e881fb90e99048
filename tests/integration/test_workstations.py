"""Compute instances as workstations: a real JupyterLab per running instance, reached
only through the server's proxy (HTTP and WebSockets) and only by the instance's user;
notebooks kept in the workspace file share, so instance B opens what instance A saved;
a terminal; kernels and terminals as activity for idle shutdown."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from clusterkit import json_cli, until
from jobkit import lapis_cli
from websockets.sync.client import connect

pytestmark = [pytest.mark.timeout(300), pytest.mark.jupyterlab]


def _instance(server: Any, user: str | None = None, idle: int | None = None) -> str:
    name = f"ws-q{uuid.uuid4().hex[:6]}"
    args = ["compute", "create", "-n", name, "--size", "Standard_DS1_v2"]
    if user:
        args += ["--user", user]
    if idle:
        args += ["--idle-time-before-shutdown-minutes", str(idle)]
    made = lapis_cli(server, *args)
    assert made.returncode == 0, made.stderr
    return name


def _lab_ready(server: Any, name: str, token: str | None = None) -> None:
    headers = {"Authorization": f"Bearer {token or server.token}"}

    def answers() -> bool:
        r = httpx.get(f"{server.url}/compute/{name}/lab/api/status", headers=headers)
        return r.status_code == 200

    until(f"JupyterLab on {name}", answers, 90)


def _ws_url(server: Any, path: str) -> str:
    return server.url.replace("http", "ws", 1) + path


def _run_cell(server: Any, name: str, kernel: str, code: str) -> str:
    """Execute ``code`` over the kernel's WebSocket (Jupyter's message protocol); its
    stdout."""
    session = uuid.uuid4().hex
    msg_id = uuid.uuid4().hex
    url = _ws_url(server, f"/compute/{name}/lab/api/kernels/{kernel}/channels?session_id={session}")
    out = []
    with connect(url, additional_headers={"Authorization": f"Bearer {server.token}"}) as ws:
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": "test", "session": session,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv(timeout=60))
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            if msg["msg_type"] == "error":
                raise AssertionError(msg["content"])
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)
    raise AssertionError("the kernel never answered")


def test_jupyterlab_per_instance_through_the_proxy(lapis_server: Any) -> None:
    a, b = _instance(lapis_server), _instance(lapis_server)
    _lab_ready(lapis_server, a)
    shown = json_cli(lapis_server, "compute", "show", "-n", a)
    apps = {x["name"]: x for x in shown["applications"]}
    assert apps["JupyterLab"] == {"name": "JupyterLab", "status": "Running",
                                  "url": f"/compute/{a}/lab/lab", "command": None}  # fmt: skip
    auth = {"Authorization": f"Bearer {lapis_server.token}"}
    lab = httpx.Client(base_url=f"{lapis_server.url}/compute/{a}/lab", headers=auth, timeout=60)
    with lab:
        # the UI itself is served (JupyterLab's page, under the proxied base URL)
        page = lab.get("/lab")
        assert page.status_code == 200 and f"/compute/{a}/lab/" in page.text
        nb = f"nb-{uuid.uuid4().hex[:6]}.ipynb"
        notebook = {"cells": [{"cell_type": "code", "source": "print(6 * 7)", "metadata": {},
                               "outputs": [], "execution_count": None}],
                    "metadata": {}, "nbformat": 4, "nbformat_minor": 5}  # fmt: skip
        saved = lab.put(f"/api/contents/{nb}", json={"type": "notebook", "content": notebook})
        assert saved.status_code == 201, saved.text
        sess = lab.post("/api/sessions", json={"path": nb, "type": "notebook",
                                               "kernel": {"name": "python3"}})  # fmt: skip
        assert sess.status_code == 201, sess.text
        kernel = sess.json()["kernel"]["id"]
        assert _run_cell(lapis_server, a, kernel, "print(6 * 7)") == "42\n"
        notebook["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout",
                                            "text": "42\n"}]  # fmt: skip
        again = lab.put(f"/api/contents/{nb}", json={"type": "notebook", "content": notebook})
        assert again.status_code == 200
        # the user's Lapis token never reaches the lab: the proxy sent the lab's own
        code = "import os; print(sorted(k for k, v in os.environ.items() if {!r} in v))"
        assert _run_cell(lapis_server, a, kernel, code.format(lapis_server.token)) == "[]\n"
        # and the workspace's own files are out of the kernel's reach (the jobs' sandbox)
        secret = lapis_server.home / "credentials.json"
        probe = (
            f"try:\n    open({str(secret)!r}).read(); print('READ')\n"
            "except OSError:\n    print('denied')"
        )
        assert _run_cell(lapis_server, a, kernel, probe) == "denied\n"
        # the kernel runs in the user's folder of the file share
        cwd = _run_cell(lapis_server, a, kernel, "import os; print(os.getcwd())").strip()
        assert cwd == str(lapis_server.home / "fileshare" / "Users" / "admin")
        # a terminal runs a command
        term = lab.post("/api/terminals").json()["name"]
        url = _ws_url(lapis_server, f"/compute/{a}/lab/terminals/websocket/{term}")
        with connect(
            url, additional_headers={"Authorization": f"Bearer {lapis_server.token}"}
        ) as ws:
            ws.send(json.dumps(["stdin", "echo hi-$((6*7))\r"]))
            seen = ""
            deadline = time.monotonic() + 30
            while "hi-42" not in seen and time.monotonic() < deadline:
                kind, *rest = json.loads(ws.recv(timeout=30))
                if kind == "stdout":
                    seen += rest[0]
            assert "hi-42" in seen, seen
    # instance B opens what A saved: the same file share
    _lab_ready(lapis_server, b)
    with httpx.Client(base_url=f"{lapis_server.url}/compute/{b}/lab", headers=auth) as other:
        got = other.get(f"/api/contents/{nb}").json()
        assert got["content"]["cells"][0]["outputs"][0]["text"] == "42\n"
    # the notebook is in the share: lapis file sees it
    listed = json_cli(lapis_server, "file", "ls")
    assert nb in {e["name"] for e in listed["entries"]}
    # stopping the instance stops its JupyterLab and its kernels; its link says so
    assert lapis_cli(lapis_server, "compute", "stop", "-n", a).returncode == 0
    until("the lab to stop", lambda: httpx.get(
        f"{lapis_server.url}/compute/{a}/lab/api/status",
        headers={"Authorization": f"Bearer {lapis_server.token}"}).status_code == 409)  # fmt: skip
    r = httpx.get(
        f"{lapis_server.url}/compute/{a}/lab/lab",
        headers={"Authorization": f"Bearer {lapis_server.token}", "Accept": "text/html"},
    )
    assert r.status_code == 409 and "start the instance" in r.text
    for name in (a, b):
        lapis_cli(lapis_server, "compute", "delete", "-n", name, "--yes")


def test_only_the_instances_user_gets_in(lapis_server: Any) -> None:
    bob = f"bob{uuid.uuid4().hex[:5]}"
    with lapis_server.client() as admin:
        assert admin.post("/api/v1/users", json={"name": bob,
                          "roles": ["AzureML Data Scientist"]}).status_code == 201  # fmt: skip
        token = admin.post("/api/v1/tokens", json={"name": "t", "user": bob}).json()["token"]
    mine = _instance(lapis_server, user=bob)  # assigned to bob: the Owner may not open it
    _lab_ready(lapis_server, mine, token)
    base = f"{lapis_server.url}/compute/{mine}/lab"
    for who in (lapis_server.token, None):
        headers = {"Authorization": f"Bearer {who}"} if who else {}
        for path in ("/api/status", "/lab", "/api/contents", "/api/kernels"):
            r = httpx.get(base + path, headers=headers)
            assert r.status_code == (403 if who else 401), (path, r.status_code)
        if who:
            assert "for its user" in r.json()["message"] and bob in r.json()["message"]
    refused = _ws_url(lapis_server, f"/compute/{mine}/lab/api/events/subscribe")
    with (  # the WebSocket handshake is refused
        pytest.raises(Exception, match=r"40[13]"),
        connect(refused, additional_headers={"Authorization": f"Bearer {lapis_server.token}"}),
    ):
        pass
    # a signed-in browser's cookie works only from the server's own origin
    cookie = {"Cookie": f"lapis_token={token}"}
    assert httpx.get(f"{base}/api/status", headers=cookie).status_code == 200
    evil = httpx.post(f"{base}/api/terminals", headers={**cookie, "Origin": "https://evil.example"})
    assert evil.status_code == 403 and "cross-site" in evil.text
    host = lapis_server.url.split("://", 1)[1]
    same = httpx.post(f"{base}/api/terminals", headers={**cookie, "Origin": f"http://{host}"})
    assert same.status_code == 200, same.text
    # the Lapis token never reaches the lab: its kernels cannot read it
    assert (
        httpx.get(f"{base}/api/status", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    lapis_cli(lapis_server, "compute", "delete", "-n", mine, "--yes")


def test_a_busy_kernel_keeps_the_instance_awake_until_it_goes_idle(
    lapis_server: Any, tmp_path: Any
) -> None:
    name = f"ws-q{uuid.uuid4().hex[:6]}"
    spec = tmp_path / "ci.yml"
    spec.write_text(f"name: {name}\ntype: computeinstance\nsize: Standard_DS1_v2\n"
                    "idle_time_before_shutdown: PT8S\n")  # fmt: skip
    assert lapis_cli(lapis_server, "compute", "create", "-f", str(spec)).returncode == 0
    _lab_ready(lapis_server, name)
    auth = {"Authorization": f"Bearer {lapis_server.token}"}
    with httpx.Client(base_url=f"{lapis_server.url}/compute/{name}/lab", headers=auth) as lab:
        kernel = lab.post("/api/kernels", json={"name": "python3"}).json()["id"]
    # a cell that computes for 20 s: far past the 8 s idle limit
    started = time.time()
    said = _run_cell(lapis_server, name, kernel, "import time; time.sleep(20); print('done')")
    ended = time.time()
    assert said == "done\n" and ended - started >= 20
    # while it ran, the instance said why it stayed up (checked after: it is history now)
    events = json_cli(lapis_server, "compute", "show", "-n", name)
    assert events["state"] == "Running", events["state_reason"]  # not stopped mid-cell
    # once the kernel is idle, the idle clock runs from its last activity, and it stops
    until("idle shutdown", lambda: json_cli(lapis_server, "compute", "show", "-n", name)[
        "state"] == "Stopped", 60)  # fmt: skip
    shown = json_cli(lapis_server, "compute", "show", "-n", name)
    assert "idle" in shown["state_reason"]
    assert shown["state_changed_at"] >= ended * 1000
    lapis_cli(lapis_server, "compute", "delete", "-n", name, "--yes")


def test_compute_show_says_a_busy_kernel_keeps_it_awake(lapis_server: Any) -> None:
    name = _instance(lapis_server)
    _lab_ready(lapis_server, name)
    auth = {"Authorization": f"Bearer {lapis_server.token}"}
    with httpx.Client(base_url=f"{lapis_server.url}/compute/{name}/lab", headers=auth) as lab:
        kernel = lab.post("/api/kernels", json={"name": "python3"}).json()["id"]
        session = uuid.uuid4().hex
        url = _ws_url(lapis_server, f"/compute/{name}/lab/api/kernels/{kernel}/channels")
        with connect(f"{url}?session_id={session}", additional_headers=auth) as ws:
            ws.send(json.dumps({
                "header": {"msg_id": uuid.uuid4().hex, "username": "t", "session": session,
                           "msg_type": "execute_request", "version": "5.3"},
                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                "content": {"code": "import time; time.sleep(15)", "silent": False},
            }))  # fmt: skip

            def awake() -> list[str]:
                return list(json_cli(lapis_server, "compute", "show", "-n", name)["awake"])

            until("the busy kernel to be seen", lambda: "kernel python3 busy" in awake(), 20)
            table = lapis_cli(lapis_server, "compute", "show", "-n", name)
            assert "kernel python3 busy" in table.stdout, table.stdout
            lab.post(f"/api/kernels/{kernel}/interrupt")
        until("the kernel to be idle again", lambda: awake() == [], 20)
    lapis_cli(lapis_server, "compute", "delete", "-n", name, "--yes")


def _ssh_argv(port: int, key: Path, *rest: str, user: str = "azureuser", tty: bool = False
              ) -> list[str]:  # fmt: skip
    options = ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "IdentitiesOnly=yes",
               "BatchMode=yes", "ConnectTimeout=10", "LogLevel=ERROR"]  # fmt: skip
    flags = [x for o in options for x in ("-o", o)]
    if tty:
        flags.append("-tt")
    return ["ssh", "-p", str(port), "-i", str(key), *flags, f"{user}@127.0.0.1", *rest]


def test_ssh_with_the_owners_key_runs_commands_and_forwards_ports(
    lapis_server: Any, tmp_path: Path
) -> None:
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("SSH TEST SKIPPED: no OpenSSH client here (`make ssh-server` installs it)")
    for k in ("mine", "other"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / k)],
                       check=True)  # fmt: skip
    name = f"ssh-q{uuid.uuid4().hex[:6]}"
    made = lapis_cli(lapis_server, "compute", "create", "-n", name, "--size", "Standard_DS1_v2",
                     "--ssh-key-value", f"@{tmp_path / 'mine.pub'}")  # fmt: skip
    assert made.returncode == 0, made.stderr

    def ssh_app() -> dict[str, Any]:
        apps = json_cli(lapis_server, "compute", "show", "-n", name)["applications"]
        return next(a for a in apps if a["name"] == "SSH")

    until("the SSH server", lambda: ssh_app()["status"] == "Running", 60)
    command = ssh_app()["command"]
    port = int(command.split("-p ", 1)[1].split()[0])
    assert command == f"ssh -p {port} azureuser@127.0.0.1"
    done = subprocess.run(_ssh_argv(port, tmp_path / "mine", "pwd; echo hi-$((6*7))"),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(lapis_server.home / "fileshare" / "Users" / "admin"),
                                   "hi-42"]  # fmt: skip
    # the workspace's own files are out of a session's reach
    secret = lapis_server.home / "credentials.json"
    peek = subprocess.run(_ssh_argv(port, tmp_path / "mine", f"cat {secret}"),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert peek.returncode != 0 and "Permission denied" in peek.stderr, peek
    # on a terminal when one is asked for (an interactive shell, VS Code's)
    term = subprocess.run(_ssh_argv(port, tmp_path / "mine", "tty", tty=True),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert term.returncode == 0 and "/dev/pts/" in term.stdout, (term.stdout, term.stderr)
    # the instance's user's name is accepted too; another name is not
    mine = subprocess.run(_ssh_argv(port, tmp_path / "mine", "true", user="admin"))
    assert mine.returncode == 0
    assert subprocess.run(_ssh_argv(port, tmp_path / "mine", "true", user="root"),
                          capture_output=True).returncode == 255  # fmt: skip
    # lapis compute connect-ssh: the command to run (or it runs ssh itself)
    printed = lapis_cli(lapis_server, "compute", "connect-ssh", "-n", name, "--print",
                        "-i", str(tmp_path / "mine"))  # fmt: skip
    assert printed.stdout.strip() == f"ssh -i {tmp_path / 'mine'} -p {port} azureuser@127.0.0.1"
    # exit codes come back, as a remote shell's do
    failed = subprocess.run(_ssh_argv(port, tmp_path / "mine", "exit 3"), capture_output=True)
    assert failed.returncode == 3
    # a second key is refused
    refused = subprocess.run(_ssh_argv(port, tmp_path / "other", "echo no"),
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert refused.returncode == 255 and "Permission denied" in refused.stderr
    # port forwarding (what VS Code's Remote-SSH uses): a loopback port of the instance
    local = _free_port()
    server_port = int(lapis_server.url.rsplit(":", 1)[1])
    tunnel = subprocess.Popen(_ssh_argv(port, tmp_path / "mine", "-N", "-L",
                                        f"{local}:127.0.0.1:{server_port}"))  # fmt: skip
    try:
        until("the tunnel", lambda: _answers(f"http://127.0.0.1:{local}/healthz"), 30)
        # an open session keeps the instance awake
        assert (
            "1 SSH session open" in json_cli(lapis_server, "compute", "show", "-n", name)["awake"]
        )
    finally:
        tunnel.terminate()
        tunnel.wait(timeout=10)
    # forwarding off the machine is refused
    off = subprocess.run(_ssh_argv(port, tmp_path / "mine", "-W", "192.0.2.1:80"),
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert off.returncode != 0
    lapis_cli(lapis_server, "compute", "delete", "-n", name, "--yes")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


FILES = Path(__file__).parents[1] / "compat" / "files" / "workstation"


def test_setup_scripts_run_at_create_and_each_start(lapis_server: Any, tmp_path: Path) -> None:
    name = f"setup-q{uuid.uuid4().hex[:6]}"
    folder = tmp_path / "box"
    shutil.copytree(FILES, folder)
    spec = folder / "instance-setup.yml"
    spec.write_text(spec.read_text().replace("name: setup-box", f"name: {name}"))
    made = lapis_cli(lapis_server, "compute", "create", "-f", str(spec))
    assert made.returncode == 0, made.stderr
    until("Running", lambda: json_cli(lapis_server, "compute", "show", "-n", name)["state"]
          == "Running", 60)  # fmt: skip
    home = lapis_server.home / "fileshare" / "Users" / "admin"
    assert (home / "tools" / "marker.txt").read_text() == "installed\n"
    assert (home / "tools" / "starts.txt").read_text().count("started") >= 1
    before = (home / "tools" / "starts.txt").read_text().count("started")
    assert lapis_cli(lapis_server, "compute", "restart", "-n", name).returncode == 0
    until("the startup script again", lambda: (home / "tools" / "starts.txt").read_text()
          .count("started") == before + 1, 60)  # fmt: skip
    logs = lapis_cli(lapis_server, "compute", "show", "-n", name, "--logs")
    assert logs.returncode == 0
    assert f"creating in {home}" in logs.stdout and "starting (fast) with 1 cores" in logs.stdout
    assert logs.stdout.count("[lapis] creation script done") == 1
    lapis_cli(lapis_server, "compute", "delete", "-n", name, "--yes")
    # a script that fails fails the instance, saying where to look
    bad = folder / "bad.yml"
    (folder / "create.sh").write_text("echo about to fail; exit 7\n")
    bad.write_text(spec.read_text().replace(name, name + "x"))
    assert lapis_cli(lapis_server, "compute", "create", "-f", str(bad)).returncode == 0
    until("Failed", lambda: json_cli(lapis_server, "compute", "show", "-n", name + "x")[
        "state"] == "Failed", 60)  # fmt: skip
    shown = json_cli(lapis_server, "compute", "show", "-n", name + "x")
    assert "creation script and startup script exited with code 7" in shown["state_reason"]
    assert "--logs" in shown["state_reason"]
    lapis_cli(lapis_server, "compute", "delete", "-n", name + "x", "--yes")


def test_a_jobs_services_serve_its_submitter_while_it_runs(
    lapis_server: Any, tmp_path: Path
) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")],
                   check=True)  # fmt: skip
    job_file = tmp_path / "interactive.yml"
    text = (FILES.parent / "jobs" / "interactive.yml").read_text()
    job_file.write_text(text.replace("SSH_PUBLIC_KEY", (tmp_path / "k.pub").read_text().strip()))
    job = json_cli(lapis_server, "job", "create", "-f", str(job_file))
    name = job["name"]

    def services() -> dict[str, dict[str, Any]]:
        shown = json_cli(lapis_server, "job", "show", name)
        return {s["name"]: s for s in shown.get("services") or []}

    until("JupyterLab in the job", lambda: services().get("my_jupyter_lab", {}).get(
        "status") == "Running", 90)  # fmt: skip
    auth = {"Authorization": f"Bearer {lapis_server.token}"}
    base = f"{lapis_server.url}/jobs/{name}/services/my_jupyter_lab"
    until("its API", lambda: httpx.get(f"{base}/api/status", headers=auth).status_code == 200)
    found = services()
    assert found["my_jupyter_lab"]["url"] == f"/jobs/{name}/services/my_jupyter_lab/lab"
    assert found["my_tensorboard"]["url"] == f"/jobs/{name}/services/my_tensorboard/"
    board = f"{lapis_server.url}/jobs/{name}/services/my_tensorboard/"
    until("TensorBoard", lambda: httpx.get(board, headers=auth).status_code == 200, 60)
    assert "tensorboard" in httpx.get(board, headers=auth).text.lower()
    assert "ssh service" in found["my_vscode"]["status"]
    # a notebook's kernel runs in the job's folder, with the job's environment
    kernel = httpx.post(f"{base}/api/kernels", headers=auth, json={"name": "python3"}).json()
    session = uuid.uuid4().hex
    url = _ws_url(lapis_server, f"/jobs/{name}/services/my_jupyter_lab/api/kernels/"
                                f"{kernel['id']}/channels?session_id={session}")  # fmt: skip
    with connect(url, additional_headers=auth) as ws:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": "t", "session": session,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": "import os; print(os.getcwd())", "silent": False},
        }))  # fmt: skip
        said = ""
        while not said:
            msg = json.loads(ws.recv(timeout=60))
            if msg.get("parent_header", {}).get("msg_id") == msg_id and msg["msg_type"] == "stream":
                said = msg["content"]["text"].strip()
    assert said.endswith(f"/{name}/wd"), said
    # ssh into the job with the listed key
    command = services()["my_ssh"]["command"]
    port = int(command.split("-p ", 1)[1].split()[0])
    done = subprocess.run(_ssh_argv(port, tmp_path / "k", "pwd"), capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == said, done.stderr
    # another user may not reach them
    other = f"o{uuid.uuid4().hex[:6]}"
    with lapis_server.client() as admin:
        admin.post("/api/v1/users", json={"name": other, "roles": ["AzureML Data Scientist"]})
        token = admin.post("/api/v1/tokens", json={"name": "t", "user": other}).json()["token"]
    r = httpx.get(f"{base}/api/status", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403 and "for its submitter" in r.json()["message"]
    table = lapis_cli(lapis_server, "job", "show", name)
    assert "my_jupyter_lab" in table.stdout and f"/jobs/{name}/services/" in table.stdout
    with httpx.Client(base_url=lapis_server.url) as browser:  # the studio's job page
        browser.get("/signin")
        browser.post("/signin", data={"token": lapis_server.token, "next": "/",
                                      "csrf": browser.cookies.get("lapis_csrf")})  # fmt: skip
        page = browser.get(f"/jobs/{name}").text
    assert 'data-service="my_jupyter_lab"' in page
    assert f'href="/jobs/{name}/services/my_jupyter_lab/lab"' in page
    # the services end with the job
    assert lapis_cli(lapis_server, "job", "cancel", name).returncode == 0
    until("the job to end", lambda: json_cli(lapis_server, "job", "show", name)["status"]
          == "Canceled", 60)  # fmt: skip
    assert httpx.get(f"{base}/api/status", headers=auth).status_code == 409
    assert services()["my_jupyter_lab"]["status"] == "Stopped"


def test_an_environment_registered_as_a_kernel_runs_in_jupyterlab(
    lapis_server: Any, tmp_path: Path
) -> None:
    env = f"kern{uuid.uuid4().hex[:6]}"
    (tmp_path / "conda.yml").write_text(
        "name: k\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n    - ipykernel\n"
        "    - tomli==2.0.1\n"
    )
    (tmp_path / "env.yml").write_text(f"name: {env}\nversion: '1'\nconda_file: conda.yml\n")
    made = lapis_cli(lapis_server, "environment", "create", "-f", str(tmp_path / "env.yml"))
    assert made.returncode == 0, made.stderr
    kernel = json_cli(lapis_server, "environment", "register-kernel", f"{env}:1")
    assert kernel["display_name"] == f"{env}:1"
    name = _instance(lapis_server)
    _lab_ready(lapis_server, name)
    auth = {"Authorization": f"Bearer {lapis_server.token}"}
    base = f"{lapis_server.url}/compute/{name}/lab"
    specs = httpx.get(f"{base}/api/kernelspecs", headers=auth).json()["kernelspecs"]
    assert kernel["kernel"] in specs, list(specs)
    started = httpx.post(f"{base}/api/kernels", headers=auth, json={"name": kernel["kernel"]})
    said = _run_cell(lapis_server, name, started.json()["id"],
                     "import tomli, sys; print(tomli.__version__, sys.executable)")  # fmt: skip
    assert said.split()[0] == "2.0.1" and said.split()[1] == kernel["python"]
    # the curated data-science environment is a kernel too (it carries ipykernel)
    curated = json_cli(lapis_server, "environment", "register-kernel", "lapis-sklearn:1")
    specs = httpx.get(f"{base}/api/kernelspecs", headers=auth).json()["kernelspecs"]
    assert curated["kernel"] == "lapis-lapis-sklearn-1" and curated["kernel"] in specs
    # an environment without ipykernel is refused in one line
    (tmp_path / "bare.yml").write_text(f"name: {env}b\nversion: '1'\nconda_file: bare.yml.c\n")
    (tmp_path / "bare.yml.c").write_text("name: b\ndependencies:\n  - python=3.11\n")
    assert lapis_cli(lapis_server, "environment", "create", "-f", str(tmp_path / "bare.yml")
                     ).returncode == 0  # fmt: skip
    refused = lapis_cli(lapis_server, "environment", "register-kernel", f"{env}b:1")
    assert refused.returncode == 1 and "has no ipykernel" in refused.stderr, refused.stderr
    lapis_cli(lapis_server, "compute", "delete", "-n", name, "--yes")


def test_custom_applications_are_served_like_jupyterlab(lapis_server: Any, tmp_path: Path) -> None:
    name = f"apps-q{uuid.uuid4().hex[:6]}"
    spec = tmp_path / "apps.yml"
    spec.write_text((FILES / "instance-apps.yml").read_text().replace("apps-box", name))
    assert lapis_cli(lapis_server, "compute", "create", "-f", str(spec)).returncode == 0
    home = lapis_server.home / "fileshare" / "Users" / "admin"
    home.mkdir(parents=True, exist_ok=True)
    (home / "hello.txt").write_text("served from the share\n")

    def app() -> dict[str, Any]:
        apps = json_cli(lapis_server, "compute", "show", "-n", name)["applications"]
        return next(a for a in apps if a["name"] == "files")

    until("the application", lambda: app()["status"] == "Running", 60)
    assert app()["url"] == f"/compute/{name}/apps/files/"
    auth = {"Authorization": f"Bearer {lapis_server.token}"}
    got = httpx.get(f"{lapis_server.url}/compute/{name}/apps/files/hello.txt", headers=auth)
    assert got.status_code == 200 and got.text == "served from the share\n"
    assert httpx.get(f"{lapis_server.url}/compute/{name}/apps/nope/", headers=auth
                     ).status_code == 404  # fmt: skip
    assert httpx.get(f"{lapis_server.url}/compute/{name}/apps/files/hello.txt").status_code == 401
    # Azure's Docker-image form is named in one line
    bad = tmp_path / "image.yml"
    bad.write_text(f"name: {name}x\ntype: computeinstance\ncustom_applications:\n"
                   "  - name: rstudio\n    image: rocker/rstudio\n")  # fmt: skip
    refused = lapis_cli(lapis_server, "compute", "create", "-f", str(bad))
    assert refused.returncode == 1 and "Docker-image applications" in refused.stderr
    lapis_cli(lapis_server, "compute", "delete", "-n", name, "--yes")
