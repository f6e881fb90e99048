"""The scoring server: one deployment instance, standard library only.

Online deployments run one of these per instance, in the deployment's
environment, and a packaged model (``lapis model package``) ships it so its
Docker context runs with plain Python. This file is the HTTP side; what is
scored lives in ``scorer.py`` (and ``mlmodel.py``), shipped beside it as
``lapis_scorer.py`` and ``lapis_mlmodel.py`` (``lapis.endpoints.runtime.ship``).
None of them imports anything from Lapis where it is not installed, or outside
the standard library, except mlflow when serving an MLflow model without a
scoring script.

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
import json
import os
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any

try:
    from lapis.endpoints.runtime.scorer import (
        Batcher,
        Scorer,
        malformed_json,
        score_request,
    )
except ImportError:  # shipped beside this file (lapis_scorer.py), where Lapis is not installed
    from lapis_scorer import (  # type: ignore[no-redef]
        Batcher,
        Scorer,
        malformed_json,
        score_request,
    )

MAX_BODY = 100 * 1024 * 1024
MAX_HEAD = 64 * 1024


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
