"""The scoring server: one deployment instance, standard library only.

Online deployments run one of these per instance, in the deployment's
environment, and a packaged model (``lapis model package``) ships this very
file so its Docker context runs with plain Python. It therefore imports
nothing from Lapis and nothing outside the standard library, except mlflow
when it serves an MLflow model without a scoring script.

Routes, as Azure's inference server has them:

- ``GET /`` and ``GET /health``: liveness (200 as soon as the port is open);
- ``GET /ready``: readiness — 503 while ``init()`` (or model loading) runs, so
  a slow model is reported as loading instead of being killed in a loop;
- ``POST /score``: the request body goes to ``run(raw_data)``; for an MLflow
  model, ``{"input_data": …}`` (Azure), ``{"dataframe_split": …}`` or
  ``{"inputs": …}`` (MLflow) are accepted.

A scoring script that raises answers 500 with a request id; the traceback goes
to the instance's log (stderr), never into the response.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import threading
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MAX_BODY = 100 * 1024 * 1024


class Scorer:
    """Loads the user's code (or an MLflow model) once, then scores requests."""

    def __init__(self, model_dir: str, script: str | None, mlflow_model: bool) -> None:
        self.model_dir = model_dir
        self.script = script
        self.mlflow_model = mlflow_model
        self.ready = threading.Event()
        self.failed: str | None = None
        self._run: Any = None
        self._model: Any = None

    def load(self) -> None:
        os.environ["AZUREML_MODEL_DIR"] = self.model_dir
        try:
            if self.script:
                path = Path(self.script).resolve()
                sys.path.insert(0, str(path.parent))
                spec = importlib.util.spec_from_file_location("score", path)
                if spec is None or spec.loader is None:
                    raise RuntimeError(f"cannot import scoring script {path}")
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                for name in ("init", "run"):
                    if not callable(getattr(module, name, None)):
                        raise RuntimeError(f"scoring script {path.name} has no {name}() function")
                module.init()
                self._run = module.run
            elif self.mlflow_model:
                import mlflow.pyfunc

                self._model = mlflow.pyfunc.load_model(self.model_dir)
            else:
                raise RuntimeError("nothing to serve: give --scoring-script or --mlflow-model")
        except Exception:
            self.failed = traceback.format_exc()
            sys.stderr.write(f"init failed:\n{self.failed}")
            sys.stderr.flush()
            return
        self.ready.set()
        sys.stderr.write("ready\n")
        sys.stderr.flush()

    def score(self, raw: bytes) -> Any:
        if self._run is not None:
            return self._run(raw.decode("utf-8", errors="replace"))
        return self._score_mlflow(json.loads(raw))

    def _score_mlflow(self, body: Any) -> Any:
        import pandas as pd

        if not isinstance(body, dict):
            raise ValueError("expected a JSON object with input_data, dataframe_split or inputs")
        if "input_data" in body:
            data = body["input_data"]
            if isinstance(data, dict) and "data" in data:
                frame = pd.DataFrame(
                    data["data"], columns=data.get("columns"), index=data.get("index")
                )
            else:
                frame = pd.DataFrame(data)
        elif "dataframe_split" in body:
            split = body["dataframe_split"]
            frame = pd.DataFrame(split["data"], columns=split.get("columns"))
        elif "inputs" in body:
            frame = pd.DataFrame(body["inputs"])
        else:
            raise ValueError(
                "expected one of input_data, dataframe_split or inputs; got "
                + ", ".join(sorted(body))
            )
        result = self._model.predict(frame)
        return result.tolist() if hasattr(result, "tolist") else result


class BadRequest(Exception):
    pass


def make_handler(scorer: Scorer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

        def _send(self, status: int, body: Any, request_id: str | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if request_id:
                self.send_header("x-request-id", request_id)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path in ("/", "/health"):
                self._send(200, {"status": "alive"})
            elif self.path == "/ready":
                if scorer.ready.is_set():
                    self._send(200, {"status": "ready"})
                elif scorer.failed:
                    self._send(503, {"status": "failed", "error": "init() failed; see the log"})
                else:
                    self._send(503, {"status": "loading"})
            else:
                self._send(404, {"error": f"no route {self.path}"})

        def do_POST(self) -> None:
            request_id = self.headers.get("x-request-id") or uuid.uuid4().hex
            if self.path != "/score":
                self._send(404, {"error": f"no route {self.path}"}, request_id)
                return
            if not scorer.ready.is_set():
                self._send(503, {"error": "model is still loading", "request_id": request_id})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(413, {"error": "request body over 100 MB", "request_id": request_id})
                return
            raw = self.rfile.read(length)
            try:
                result = scorer.score(raw)
            except (json.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
                if scorer._run is not None:  # the user's run() raised: their bug, not the input
                    self._fail(request_id)
                    return
                self._send(400, {"error": f"bad request: {exc}", "request_id": request_id})
                return
            except Exception:
                self._fail(request_id)
                return
            self._send(200, result, request_id)

        def _fail(self, request_id: str) -> None:
            sys.stderr.write(f"request {request_id} failed:\n{traceback.format_exc()}")
            sys.stderr.flush()
            self._send(
                500,
                {
                    "error": "the scoring script raised an error; see the deployment log",
                    "request_id": request_id,
                },
                request_id,
            )

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a model: init() once, run() per request")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--scoring-script")
    parser.add_argument("--mlflow-model", action="store_true")
    parser.add_argument(
        "--port-file", help="write the bound port here (atomically) once listening; for --port 0"
    )
    args = parser.parse_args(argv)
    scorer = Scorer(args.model_dir, args.scoring_script, args.mlflow_model)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(scorer))
    server.daemon_threads = True
    port = server.server_address[1]
    sys.stderr.write(f"listening on {args.host}:{port}\n")
    sys.stderr.flush()
    if args.port_file:
        tmp = f"{args.port_file}.tmp"
        with open(tmp, "w") as fh:
            fh.write(str(port))
        os.replace(tmp, args.port_file)
    threading.Thread(target=scorer.load, daemon=True).start()  # listen first: probes see loading
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
