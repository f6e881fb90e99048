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
import asyncio
import contextlib
import importlib.util
import json
import os
import queue
import sys
import threading
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable, Tuple

MAX_BODY = 100 * 1024 * 1024
MAX_HEAD = 64 * 1024


def mlmodel_root(model_dir: Path) -> Path:
    """Where the MLflow model is: ``AZUREML_MODEL_DIR`` holds the registered folder, so
    its ``MLmodel`` is one level down (or at the top, for a model fetched before that)."""
    if (model_dir / "MLmodel").is_file():
        return model_dir
    found = sorted(p.parent for p in model_dir.glob("*/MLmodel"))
    found += sorted(p.parent for p in model_dir.glob("*/*/MLmodel"))
    if not found:
        raise RuntimeError(f"no MLmodel file under {model_dir}: this is not an MLflow model")
    return found[0]


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
        self.max_batch = 1  # > 1: MLflow requests are scored together (see Batcher)

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

                self._model = mlflow.pyfunc.load_model(str(mlmodel_root(Path(self.model_dir))))
                self.max_batch = batch_size(set(self._model.metadata.flavors))
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


def score_request(scorer: Scorer, raw: bytes, request_id: str) -> tuple[int, bytes]:
    """Run one request through the model (in a worker thread); never raises."""
    try:
        result = scorer.score(raw)
        return 200, json.dumps(result).encode()
    except (json.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
        if scorer._run is None:  # an MLflow model refused the input: the caller's mistake
            error = {"error": f"bad request: {exc}", "request_id": request_id}
            return 400, json.dumps(error).encode()
        return _failed(request_id)  # the user's run() raised: their bug, not the input
    except Exception:
        return _failed(request_id)


def _failed(request_id: str) -> tuple[int, bytes]:
    sys.stderr.write(f"request {request_id} failed:\n{traceback.format_exc()}")
    sys.stderr.flush()
    body = {
        "error": "the scoring script raised an error; see the deployment log",
        "request_id": request_id,
    }
    return 500, json.dumps(body).encode()


def malformed_json(headers: dict[str, str], body: bytes, scorer: Scorer) -> str | None:
    """Why a body declared as JSON does not parse, for scoring-script deployments.

    A scoring script gets the raw body, so a broken JSON body would surface as
    its ``json.loads`` raising — a 500 that blames the script for the caller's
    mistake. Checking here answers 400 with the parser's reason instead.
    MLflow models parse the body themselves and already answer 400.
    """
    if scorer.script is None or "json" not in headers.get("content-type", ""):
        return None
    try:
        json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        return str(exc)
    return None


ROW_WISE_FLAVORS = frozenset({"sklearn", "xgboost", "lightgbm", "catboost"})
DEFAULT_MAX_BATCH = 64


def batch_size(flavors: set[str]) -> int:
    """How many requests an MLflow model may score at once: 1 means one at a time.

    Batching is only safe when predictions are row by row (each row's answer
    depends on that row alone), which the flavors above guarantee;
    ``$LAPIS_SCORING_MAX_BATCH`` overrides (1 turns batching off, N > 1 turns
    it on for any MLflow model).
    """
    given = os.environ.get("LAPIS_SCORING_MAX_BATCH")
    if given:
        return max(1, int(given))
    return DEFAULT_MAX_BATCH if flavors & ROW_WISE_FLAVORS else 1


def table_of(body: Any) -> tuple[tuple[Any, ...], list[Any]] | None:
    """(columns, rows) of a split-oriented payload, or None when it cannot be merged."""
    if not isinstance(body, dict) or len(body) != 1:
        return None
    split = body.get("dataframe_split", body.get("input_data"))
    if not isinstance(split, dict) or "index" in split:
        return None
    columns, rows = split.get("columns"), split.get("data")
    if not isinstance(columns, list) or not isinstance(rows, list) or not rows:
        return None
    if not all(isinstance(r, list) and len(r) == len(columns) for r in rows):
        return None
    return tuple(columns), rows


Done = Callable[[Tuple[int, bytes]], None]  # typing.*: it runs on Python 3.8


class Batcher:
    """Server-side micro-batching for MLflow models whose predictions are row-wise.

    Requests queue here and one thread scores them: it takes the first, then
    whatever else is already waiting (up to ``max_batch``) — no waiting for a
    batch to fill, so a lone request is never delayed. Requests with the same
    columns become one DataFrame and one ``predict`` call, whose rows are split
    back per request: per-call costs (schema enforcement, DataFrame building)
    are paid once per batch instead of once per request. Anything that cannot
    be merged, or a batch whose ``predict`` fails, is scored one request at a
    time, so each caller still gets its own answer or its own error.
    """

    def __init__(self, scorer: Scorer, loop: asyncio.AbstractEventLoop) -> None:
        self.scorer = scorer
        self.loop = loop
        self.queue: queue.SimpleQueue[tuple[bytes, str, Done]] = queue.SimpleQueue()
        self.batches = 0  # predict calls on merged requests, and the requests they answered
        self.batched = 0
        threading.Thread(target=self._serve, name="batcher", daemon=True).start()

    def submit(self, raw: bytes, request_id: str, done: Done) -> None:
        """Score ``raw``; ``done((status, body))`` is called on the event loop."""
        self.queue.put((raw, request_id, done))

    def _serve(self) -> None:
        while True:
            items = [self.queue.get()]
            while len(items) < self.scorer.max_batch:
                try:
                    items.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            results = self._score(items)
            self.loop.call_soon_threadsafe(_deliver, results)

    def _score(self, items: list[tuple[bytes, str, Done]]) -> list[tuple[Done, tuple[int, bytes]]]:
        out: list[tuple[Done, tuple[int, bytes]]] = []
        groups: dict[tuple[Any, ...], list[tuple[list[Any], str, bytes, Done]]] = {}
        for raw, request_id, done in items:
            try:
                table = table_of(json.loads(raw)) if len(items) > 1 else None
            except ValueError:
                table = None
            if table is None:
                out.append((done, score_request(self.scorer, raw, request_id)))
            else:
                groups.setdefault(table[0], []).append((table[1], request_id, raw, done))
        for columns, members in groups.items():
            out += self._predict_together(columns, members)
        return out

    def _predict_together(
        self, columns: tuple[Any, ...], members: list[tuple[list[Any], str, bytes, Done]]
    ) -> list[tuple[Done, tuple[int, bytes]]]:
        import pandas as pd

        rows = [row for member in members for row in member[0]]
        try:
            frame = pd.DataFrame(rows, columns=list(columns))
            result = self.scorer._model.predict(frame)
            values = result.tolist() if hasattr(result, "tolist") else None
            if not isinstance(values, list) or len(values) != len(rows):
                raise ValueError("predictions do not match the rows one to one")
        except Exception:  # one bad request must not fail the others: score each alone
            return [(done, score_request(self.scorer, raw, rid)) for _, rid, raw, done in members]
        out = []
        start = 0
        for member_rows, _, _, done in members:
            stop = start + len(member_rows)
            out.append((done, (200, json.dumps(values[start:stop]).encode())))
            start = stop
        self.batches += 1
        self.batched += len(members)
        return out


def _deliver(results: list[tuple[Done, tuple[int, bytes]]]) -> None:
    for done, result in results:
        done(result)


class HttpConnection(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection: parse, answer probes inline, score in a thread.

    An asyncio server rather than ``ThreadingHTTPServer``: a thread per
    connection makes tens of keep-alive connections fight over the GIL and
    some wait for hundreds of milliseconds, while one event loop serves them
    in order. ``run()`` still runs in worker threads (it may block, and the
    probes must answer meanwhile); requests on one connection are answered
    one at a time, in order.
    """

    def __init__(self, server: ScoringServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.busy = False
        self.peer = "-"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else "-"

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        """Answer every complete request in the buffer until one needs a worker thread."""
        while not self.busy and self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self._reply("-", 431, {"error": "request head too large"}, close=True)
                return
            lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            parts = lines[0].split()
            if len(parts) != 3:
                self._reply(lines[0], 400, {"error": "bad request line"}, close=True)
                return
            method, path, version = parts
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._reply(lines[0], 411, {"error": "send a Content-Length"}, close=True)
                return
            try:
                length = int(headers.get("content-length") or 0)
                if length < 0:
                    raise ValueError(length)
            except ValueError:
                self._reply(lines[0], 400, {"error": "bad Content-Length"}, close=True)
                return
            request_id = headers.get("x-request-id") or uuid.uuid4().hex
            if length > MAX_BODY:
                error = {"error": "request body over 100 MB", "request_id": request_id}
                self._reply(lines[0], 413, error, close=True)
                return
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4 : end + 4 + length])
            del self.buf[: end + 4 + length]
            connection = headers.get("connection", "").lower()
            close = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
            broken = malformed_json(headers, body, self.server.scorer) if method == "POST" else None
            if broken:
                error = {
                    "error": f"bad request: the body is not valid JSON ({broken})",
                    "request_id": request_id,
                }
                self._reply(lines[0], 400, error, request_id, close)
                continue
            self._handle(lines[0], method, path, body, request_id, close)

    def _handle(
        self, line: str, method: str, path: str, body: bytes, request_id: str, close: bool
    ) -> None:
        scorer = self.server.scorer
        if method == "GET":
            if path in ("/", "/health"):
                alive: dict[str, Any] = {"status": "alive"}
                batcher = self.server._batcher
                if batcher is not None:
                    alive |= {"batches": batcher.batches, "batched_requests": batcher.batched}
                self._reply(line, 200, alive, close=close)
            elif path == "/ready":
                if scorer.ready.is_set():
                    self._reply(line, 200, {"status": "ready"}, close=close)
                elif scorer.failed:
                    failed = {"status": "failed", "error": "init() failed; see the log"}
                    self._reply(line, 503, failed, close=close)
                else:
                    self._reply(line, 503, {"status": "loading"}, close=close)
            else:
                self._reply(line, 404, {"error": f"no route {path}"}, close=close)
            return
        if method != "POST" or path != "/score":
            error = {"error": f"no route {method} {path}"}
            self._reply(line, 404 if method == "POST" else 405, error, request_id, close)
            return
        if not scorer.ready.is_set():
            error = {"error": "model is still loading", "request_id": request_id}
            self._reply(line, 503, error, close=close)
            return
        self.busy = True
        if scorer.max_batch > 1:
            self.server.batcher().submit(
                body, request_id, lambda result: self._scored(line, request_id, close, result)
            )
            return
        future = asyncio.get_running_loop().run_in_executor(
            self.server.workers, score_request, scorer, body, request_id
        )
        future.add_done_callback(lambda f: self._scored(line, request_id, close, f.result()))

    def _scored(self, line: str, request_id: str, close: bool, result: tuple[int, bytes]) -> None:
        self.busy = False
        status, data = result
        self._write(line, status, data, request_id, close)
        self._next()

    def _reply(
        self,
        line: str,
        status: int,
        body: Any,
        request_id: str | None = None,
        close: bool = False,
    ) -> None:
        self._write(line, status, json.dumps(body).encode(), request_id, close)

    def _write(
        self, line: str, status: int, data: bytes, request_id: str | None, close: bool
    ) -> None:
        if not (status == 200 and line.startswith("GET ")):  # probes every few seconds: quiet
            sys.stderr.write(f'{self.peer} "{line}" {status}\n')
        transport = self.transport
        if transport is None:
            return
        phrase = HTTPStatus(status).phrase
        head = (
            f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n"
        )
        if request_id:
            head += f"x-request-id: {request_id}\r\n"
        if close:
            head += "Connection: close\r\n"
        transport.write(head.encode("latin-1") + b"\r\n" + data)  # one write: no Nagle stall
        if close:
            transport.close()
            self.transport = None


class ScoringServer:
    """The listening socket, the scorer and the threads ``run()`` is called in."""

    def __init__(self, scorer: Scorer, threads: int) -> None:
        self.scorer = scorer
        self.workers = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="score")
        self._batcher: Batcher | None = None

    def batcher(self) -> Batcher:
        if self._batcher is None:
            self._batcher = Batcher(self.scorer, asyncio.get_running_loop())
        return self._batcher


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
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("LAPIS_SCORING_THREADS", "16")),
        help="worker threads calling run() at once (default 16, or $LAPIS_SCORING_THREADS)",
    )
    args = parser.parse_args(argv)
    scorer = Scorer(args.model_dir, args.scoring_script, args.mlflow_model)
    state = ScoringServer(scorer, max(1, args.threads))
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(lambda: HttpConnection(state), args.host, args.port, backlog=1024)
    )
    port = server.sockets[0].getsockname()[1]
    sys.stderr.write(f"listening on {args.host}:{port}\n")
    sys.stderr.flush()
    if args.port_file:
        tmp = f"{args.port_file}.tmp"
        with open(tmp, "w") as fh:
            fh.write(str(port))
        os.replace(tmp, args.port_file)
    threading.Thread(target=scorer.load, daemon=True).start()  # listen first: probes see loading
    with contextlib.suppress(KeyboardInterrupt):
        loop.run_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
