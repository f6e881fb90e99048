"""End-to-end demo: a workspace server, a tracked training run, the results.

Run with ``make demo``. It starts ``lapis server`` in ./.lapis-demo, trains a
scikit-learn classifier on the digits data set that scikit-learn ships,
logging params, per-epoch and per-step metrics and the model with the
unmodified **mlflow** client, then prints the run's metrics with the Lapis
CLI. In a terminal the server stays up for browsing until Ctrl+C; without one
(CI, scripts) the demo stops the server and exits 0.
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
EXPERIMENT = "digits-demo"


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


def train(url: str, token: str) -> str:
    os.environ["MLFLOW_TRACKING_URI"] = url
    os.environ["MLFLOW_TRACKING_TOKEN"] = token
    import mlflow
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import accuracy_score, log_loss
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, random_state=0)
    params = {"loss": "log_loss", "alpha": 1e-4, "epochs": 15, "batch_size": 64}
    classes = np.unique(y)
    model = SGDClassifier(loss="log_loss", alpha=params["alpha"], random_state=0)
    rng = np.random.default_rng(0)

    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name="sgd-digits") as run:
        mlflow.log_params(params)
        step = 0
        for epoch in range(params["epochs"]):
            order = rng.permutation(len(X_train))
            for start in range(0, len(order), params["batch_size"]):
                batch = order[start : start + params["batch_size"]]
                model.partial_fit(X_train[batch], y_train[batch], classes=classes)
                batch_loss = log_loss(
                    y_train[batch], model.predict_proba(X_train[batch]), labels=classes
                )
                mlflow.log_metric("batch_loss", batch_loss, step=step)
                step += 1
            mlflow.log_metrics(
                {
                    "train_accuracy": accuracy_score(y_train, model.predict(X_train)),
                    "val_accuracy": accuracy_score(y_val, model.predict(X_val)),
                    "val_loss": log_loss(y_val, model.predict_proba(X_val), labels=classes),
                },
                step=epoch,
            )
        mlflow.sklearn.log_model(model, name="model", input_example=X_val[:2])
        return str(run.info.run_id)


def main() -> None:
    proc, url, token = start_server()
    try:
        print(f"Lapis server running at {url} (workspace {HOME})")
        run_id = train(url, token)
        env = dict(os.environ, LAPIS_HOME=str(HOME))
        subprocess.run(
            [sys.executable, "-m", "lapis", "run", "metrics", run_id], env=env, check=True
        )
        print(f"\nRun {run_id} in experiment '{EXPERIMENT}'.")
        print(f"Server:  {url}  (every call needs the token: LAPIS_HOME={HOME} lapis auth token)")
        print(f"Try:     LAPIS_HOME={HOME} .venv/bin/lapis run list --experiment {EXPERIMENT}")
        print(f"         LAPIS_HOME={HOME} .venv/bin/lapis run show {run_id}")
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
