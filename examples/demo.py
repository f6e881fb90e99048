"""End-to-end demo: a server, a compute instance, a YAML job, a model, an endpoint.

Run with ``make demo``. It starts ``lapis server`` in ./.lapis-demo, creates a
one-core compute instance (examples/compute/cpu-demo.yml), submits the
training job examples/jobs/digits/job.yml there and streams its log: the
script trains a scikit-learn classifier on the digits data set, logging
params, per-epoch and per-step metrics and the model with the unmodified
**mlflow** client. Then it prints the job, its metrics and the instance with
the Lapis CLI, registers the job's model output in the model registry, deploys
it behind the online endpoint ``digits-demo`` (examples/endpoints/digits),
scores four handwritten digits through the endpoint's scoring URL, and prints
the endpoint with its telemetry and the model's lineage. In a terminal the
server stays up for browsing until Ctrl+C; without one (CI, scripts) the demo
stops the server and exits 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HOME = Path(os.environ.get("LAPIS_DEMO_HOME", ".lapis-demo")).resolve()
EXAMPLES = Path(__file__).resolve().parent
EXPERIMENT = "digits-demo"
MODEL = "digits-sgd"
ENDPOINT = "digits-demo"
SERVING = EXAMPLES / "endpoints" / "digits"


def shown(path: Path) -> str:
    """``path`` relative to where the demo was started, when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def start_server() -> tuple[subprocess.Popen[bytes], str, str]:
    HOME.mkdir(parents=True, exist_ok=True)
    info = HOME / "server.json"
    info.unlink(missing_ok=True)
    log = open(HOME / "server.log", "ab")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "lapis", "server", "--home", str(HOME), "--port", "0"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"lapis server exited with code {proc.returncode}; see {HOME / 'server.log'}")
        if info.exists():
            try:
                url = json.loads(info.read_text())["url"]
                with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                    token = json.loads((HOME / "credentials.json").read_text())["token"]
                    return proc, url, token
            except (OSError, ValueError, KeyError):
                pass
        time.sleep(0.2)
    proc.kill()
    sys.exit("lapis server did not come up within 60 s")


def lapis(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, LAPIS_HOME=str(HOME))
    return subprocess.run([sys.executable, "-m", "lapis", *args], env=env, check=check)


def ensure_instance() -> None:
    """Create the demo's compute instance once; later demos reuse (and start) it."""
    shown = subprocess.run(
        [sys.executable, "-m", "lapis", "compute", "show", "cpu-demo", "-o", "json"],
        env=dict(os.environ, LAPIS_HOME=str(HOME)),
        capture_output=True,
        text=True,
    )
    if shown.returncode != 0:
        print("\n$ lapis compute create -f examples/compute/cpu-demo.yml")
        lapis("compute", "create", "-f", str(EXAMPLES / "compute" / "cpu-demo.yml"), "--wait")
    elif json.loads(shown.stdout)["state"] == "Stopped":
        lapis("compute", "start", "cpu-demo", "--wait")


def run_job(url: str, token: str) -> dict[str, object]:
    from lapis.sdk import jobs
    from lapis.sdk.connection import LapisHTTP

    job_file = EXAMPLES / "jobs" / "digits" / "job.yml"
    print(f"\n$ lapis job create -f {shown(job_file)} --stream")
    with LapisHTTP(url, token) as http:
        job = jobs.submit_file(http, job_file)
        print(f"Submitted job {job['name']} to {job['compute']}")
        final = jobs.stream(
            http,
            str(job["name"]),
            on_status=lambda status, reason: print(
                f"[{status}]" + (f" {reason.splitlines()[0]}" if reason else ""), flush=True
            ),
        )
    if final["status"] != "Completed":
        sys.exit(f"job {final['name']} ended {final['status']}: {final['status_reason']}")
    return final


def quiet(*args: str) -> subprocess.CompletedProcess[str]:
    """A CLI call whose JSON answer the demo reads instead of printing."""
    env = dict(os.environ, LAPIS_HOME=str(HOME))
    return subprocess.run(
        [sys.executable, "-m", "lapis", *args, "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
    )


def serve(job: dict[str, object], url: str) -> str:
    """Register the job's model, deploy it (or roll the deployment over to it), score."""
    print(
        f"\n$ lapis model create --name {MODEL} --type mlflow_model "
        f"--path azureml://jobs/{job['name']}/outputs/model"
    )
    made = quiet("model", "create", "--name", MODEL, "--type", "mlflow_model",
                 "--path", f"azureml://jobs/{job['name']}/outputs/model")  # fmt: skip
    if made.returncode != 0:
        sys.exit(made.stderr.strip())
    version = str(json.loads(made.stdout)["version"])
    print(f"Registered model {MODEL} version {version}")
    if quiet("online-endpoint", "show", ENDPOINT).returncode != 0:
        print(f"\n$ lapis online-endpoint create -f {shown(SERVING)}/endpoint.yml")
        lapis("online-endpoint", "create", "-f", str(SERVING / "endpoint.yml"))
    if quiet("online-deployment", "show", "-e", ENDPOINT, "-n", "blue").returncode != 0:
        print(f"\n$ lapis online-deployment create -f {shown(SERVING)}/blue.yml"
              " --all-traffic")  # fmt: skip
        lapis("online-deployment", "create", "-f", str(SERVING / "blue.yml"), "--all-traffic")
    else:  # a second demo run: roll the running deployment over to the new version
        change = f"model=azureml:{MODEL}:{version}"
        print(f"\n$ lapis online-deployment update -e {ENDPOINT} -n blue --set {change}")
        lapis("online-deployment", "update", "-e", ENDPOINT, "-n", "blue", "--set", change)
    request = SERVING / "sample-request.json"
    print(f"\n$ lapis online-endpoint invoke {ENDPOINT} --request-file {shown(request)}")
    print("# four 8x8 images of handwritten digits: 0, 1, 2 and 3")
    lapis("online-endpoint", "invoke", ENDPOINT, "--request-file", str(request))
    traffic(url, request)
    return version


def traffic(url: str, request: Path) -> None:
    """A short burst of scoring requests, so the endpoint's telemetry has something to show."""
    import httpx

    keys = json.loads(quiet("online-endpoint", "get-credentials", ENDPOINT).stdout)
    headers = {"Authorization": f"Bearer {keys['primaryKey']}"}
    body = request.read_bytes()
    started = time.perf_counter()
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        codes = [
            http.post(f"/api/v1/endpoints/{ENDPOINT}/score", content=body).status_code
            for _ in range(200)
        ]
    took = time.perf_counter() - started
    print(f"\nSent 200 scoring requests in {took:.2f} s: {codes.count(200)} answered 200")


def main() -> None:
    proc, url, token = start_server()
    try:
        print(f"Lapis server running at {url} (workspace {HOME})")
        ensure_instance()
        job = run_job(url, token)
        run_id = str(job["run_id"])
        print(f"\n$ lapis job show {job['name']}")
        lapis("job", "show", str(job["name"]))
        print(f"\n$ lapis run metrics {run_id}")
        lapis("run", "metrics", run_id)
        print("\n$ lapis compute show cpu-demo")
        lapis("compute", "show", "cpu-demo")
        version = serve(job, url)
        print(f"\n$ lapis online-endpoint show {ENDPOINT}")
        lapis("online-endpoint", "show", ENDPOINT)
        print(f"\n$ lapis model show {MODEL} --version {version}   # job → model → deployment")
        lapis("model", "show", MODEL, "--version", version)
        print(f"\nJob {job['name']} (run {run_id}) in experiment '{EXPERIMENT}'.")
        print(f"Server:  {url}  (every call needs the token: LAPIS_HOME={HOME} lapis auth token)")
        print(f"Studio:  {url}/  (sign in with that token; the run, job, model and endpoint")
        print(f"         pages: {url}/runs/{run_id}, {url}/endpoints/{ENDPOINT})")
        print(f"Try:     LAPIS_HOME={HOME} .venv/bin/lapis run list --experiment {EXPERIMENT}")
        print(f"         LAPIS_HOME={HOME} .venv/bin/lapis run show {run_id}")
        print(f"         LAPIS_HOME={HOME} .venv/bin/lapis job download {job['name']}")
        print(f"         LAPIS_HOME={HOME} .venv/bin/lapis online-deployment get-logs "
              f"-e {ENDPOINT} -n blue")  # fmt: skip
        if sys.stdin.isatty() and sys.stdout.isatty():
            print("The server stays up for browsing; press Ctrl+C to stop it.")
            try:
                proc.wait()
            except KeyboardInterrupt:
                print()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    print("Server stopped.")


if __name__ == "__main__":
    main()
