"""The background metric writer: logging calls never wait for the network.

A ``log_metric`` call appends one tuple to an in-memory list and returns; a
daemon thread sends what has accumulated every ``interval`` seconds, or sooner
when ``flush_at`` points are waiting, as columnar batches of at most
``chunk_size`` points (``POST /api/v1/runs/{id}/log``). ``flush()`` sends
everything logged before it and returns once the server has acknowledged it,
which is what ``end_run`` and the interpreter-exit hook rely on.

Concurrency without a lock on the hot path: producers only ever ``append`` to
the end of the list, and the sender takes a prefix with ``points[:n]`` followed
by ``del points[:n]`` — each a single atomic operation on a list — so a point
appended meanwhile simply waits for the next batch. One tuple per point (not
four parallel lists) keeps points from several logging threads intact.

Failures: connection errors, timeouts and 5xx answers are retried with
backoff for up to ``retry_timeout`` seconds (the server ignores a point it
already has, so resending a batch is safe). A 4xx answer means the batch
itself is wrong; it is dropped and the error is raised from the next logging
call, ``flush`` or ``end_run`` — never swallowed.

Inside a job (``LAPIS_SPOOL_DIR`` set by the scheduler) a server that stays
away does not fail the job: a batch that could not be sent is written to the
spool folder (whole, fsync'd, then renamed into place) and resent from there in
the background, oldest first. ``flush`` — and so ``end_run`` and the exit hook —
keeps trying for ``LAPIS_EXIT_GRACE`` seconds (default 300) and then leaves the
rest on disk, where the server replays it into the run when it finalizes the
job. An outage longer than the job itself therefore loses no point either.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from operator import itemgetter
from pathlib import Path
from typing import Any

import httpx

from lapis.errors import InvalidParameterValue, LapisError
from lapis.sdk.connection import LapisHTTP, ServerNotFound, status_of

try:  # orjson is a core dependency of lapis, but the SDK also works without it
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover - exercised only without orjson

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


Point = tuple[str, "float | str", int, int]

_COLUMN = tuple(itemgetter(i) for i in range(4))
_NON_FINITE = {float("inf"): "Infinity", float("-inf"): "-Infinity"}
_live: weakref.WeakSet[MetricWriter] = weakref.WeakSet()


def _special(value: float) -> str:
    """JSON has no NaN or infinity; the server reads MLflow's string spellings."""
    return _NON_FINITE.get(value, "NaN")


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


class MetricWriter:
    """Buffers one run's metrics, params and tags and ships them in the background."""

    def __init__(
        self,
        http: LapisHTTP,
        run_id: str,
        *,
        interval: float = 1.0,
        flush_at: int = 50_000,
        chunk_size: int = 100_000,
        retry_timeout: float | None = None,
        start: bool = True,
    ) -> None:
        self.http = http
        self.run_id = run_id
        self.interval = interval
        self.flush_at = flush_at
        self.chunk_size = chunk_size
        self.retry_timeout = (
            _env_float("LAPIS_RETRY_TIMEOUT", 60.0) if retry_timeout is None else retry_timeout
        )
        spool = os.environ.get("LAPIS_SPOOL_DIR")
        self.spool = Path(spool) if spool else None
        if self.spool is not None and retry_timeout is None:
            self.retry_timeout = _env_float("LAPIS_RETRY_TIMEOUT", 10.0)  # then to disk
        self.exit_grace = _env_float("LAPIS_EXIT_GRACE", 300.0)
        self._spooled = 0
        self.sent_points = 0
        self._path = f"/api/v1/runs/{run_id}/log"
        self._points: list[Point] = []
        self._params: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self._seen_params: dict[str, str] = {}
        self._error: BaseException | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        self._reset_sync()
        _live.add(self)
        if start:
            self._start_thread()

    def _reset_sync(self) -> None:
        self._meta_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._wake = threading.Event()

    def _start_thread(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"lapis-writer-{self.run_id[:8]}", daemon=True
        )
        self._thread.start()

    # --- the hot path ---------------------------------------------------------
    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Queue one point; raises only for a bad argument or an earlier batch's error."""
        if self._error is not None:
            self._raise_pending()
        if key.__class__ is not str:
            raise InvalidParameterValue(f"metric key must be a string, got {key!r}")
        value = float(value)
        points = self._points
        points.append(
            (
                key,
                _special(value) if value - value else value,
                0 if step is None else int(step),
                int(time.time() * 1000) if timestamp is None else int(timestamp),
            )
        )
        if len(points) >= self.flush_at and not self._wake.is_set():
            self._wake.set()  # once per batch: set() takes a lock, is_set() does not

    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
    ) -> None:
        ts = int(time.time() * 1000) if timestamp is None else int(timestamp)
        for key, value in metrics.items():
            self.log_metric(key, value, step, ts)

    def log_params(self, params: Mapping[str, object]) -> None:
        """Queue params; re-logging a key with another value fails here, as MLflow's server does."""
        if self._error is not None:
            self._raise_pending()
        clean = {str(k): str(v) for k, v in params.items()}
        with self._meta_lock:
            for key, value in clean.items():
                old = self._seen_params.get(key)
                if old is not None and old != value:
                    raise InvalidParameterValue(
                        f"Changing param values is not allowed. Param with key='{key}' was "
                        f"already logged with value='{old}' for run ID='{self.run_id}'. "
                        f"Attempted logging new value '{value}'."
                    )
            self._seen_params.update(clean)
            self._params.update(clean)
        self._wake.set()

    def set_tags(self, tags: Mapping[str, object]) -> None:
        if self._error is not None:
            self._raise_pending()
        with self._meta_lock:
            self._tags.update({str(k): str(v) for k, v in tags.items()})
        self._wake.set()

    @property
    def pending(self) -> int:
        """Points logged but not yet acknowledged by the server (in flight ones excluded)."""
        return len(self._points)

    # --- flushing -------------------------------------------------------------
    def flush(self) -> None:
        """Send everything logged so far; return once the server has acknowledged it
        (or, in a job, once it is safe on disk and the grace period has passed)."""
        with self._send_lock:
            self._send_pending()
            if self.spool is not None and self._spool_files():
                self._drain_spool(deadline=time.monotonic() + self.exit_grace)
        if self._error is not None:
            self._raise_pending()

    def close(self) -> None:
        """Final flush, then stop the thread. Idempotent."""
        try:
            self.flush()
        finally:
            self._closed = True
            self._wake.set()
            thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=5)
            _live.discard(self)

    def _raise_pending(self) -> None:
        err, self._error = self._error, None
        if err is not None:
            raise err

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._closed:
                return
            spooled = self.spool is not None and self._spooled > 0
            if not (self._points or self._params or self._tags or spooled):
                continue
            with self._send_lock:
                self._send_pending()
                if spooled:
                    self._drain_spool(deadline=None)

    def _take(self) -> tuple[list[Point], dict[str, str], dict[str, str]]:
        points = self._points
        n = len(points)
        batch = points[:n]
        del points[:n]
        with self._meta_lock:
            params, tags = self._params, self._tags
            self._params, self._tags = {}, {}
        return batch, params, tags

    def _send_pending(self) -> None:
        """Ship the buffer (caller holds ``_send_lock``); failures land in ``_error``."""
        batch, params, tags = self._take()
        if not (batch or params or tags):
            return
        step = self.chunk_size
        for start in range(0, max(len(batch), 1), step):
            chunk = batch[start : start + step]
            body: dict[str, Any] = {}
            if chunk:
                keys, values, steps, stamps = (list(map(_COLUMN[i], chunk)) for i in range(4))
                body["metrics"] = {"key": keys, "value": values, "step": steps, "timestamp": stamps}
            if start == 0:
                if params:
                    body["params"] = params
                if tags:
                    body["tags"] = tags
            content = _dumps(body)
            try:
                self._post(content)
            except BaseException as exc:
                if self.spool is not None and _transient(exc):
                    self._to_spool(content)  # kept on disk, resent in the background
                    continue
                lost = len(batch) - start
                self._error = exc
                if not isinstance(exc, LapisError) or status_of(exc) is None:
                    print(  # a background thread has nowhere else to say it
                        f"lapis: {lost} metric point(s) for run {self.run_id} could not be "
                        f"sent: {exc}",
                        file=sys.stderr,
                    )
                return
            self.sent_points += len(chunk)

    # --- the spool (jobs only) --------------------------------------------------------
    def _spool_files(self) -> list[Path]:
        assert self.spool is not None
        try:
            return sorted(self.spool.glob(f"{self.run_id}.*.json"))
        except OSError:
            return []

    def _to_spool(self, content: bytes) -> None:
        assert self.spool is not None
        self.spool.mkdir(parents=True, exist_ok=True)
        self._spooled += 1
        name = f"{self.run_id}.{time.time_ns():020d}.{os.getpid()}.{self._spooled}.json"
        tmp = self.spool / f".{name}.part"
        with open(tmp, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.spool / name)

    def _drain_spool(self, deadline: float | None) -> None:
        """Resend spooled batches oldest first; with a deadline, keep trying until then."""
        delay = 0.5
        while True:
            files = self._spool_files()
            for path in files:
                try:
                    self.http.post_raw(self._path, path.read_bytes())
                except BaseException as exc:
                    if not _transient(exc):
                        path.unlink(missing_ok=True)  # a 4xx: the batch itself is wrong
                        self._error = exc
                        continue
                    break
                path.unlink(missing_ok=True)
            else:
                self._spooled = 0
                return
            if deadline is None or time.monotonic() + delay > deadline:
                if deadline is not None:
                    print(
                        f"lapis: the server did not come back within {self.exit_grace:.0f} s; "
                        f"{len(self._spool_files())} batch(es) of run {self.run_id} stay in "
                        f"{self.spool}, recorded by the server when the job ends",
                        file=sys.stderr,
                    )
                return
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _post(self, content: bytes) -> None:
        """POST one batch, retrying what may succeed later (see the module docstring)."""
        deadline = time.monotonic() + self.retry_timeout
        delay = 0.1
        while True:
            try:
                self.http.post_raw(self._path, content)
                return
            except LapisError as exc:
                status = status_of(exc)
                retry = isinstance(exc, ServerNotFound) or (status or 0) >= 500 or status == 429
                if not retry or time.monotonic() + delay > deadline:
                    raise
            except httpx.TransportError:  # timeouts, resets, half-closed keep-alives
                if time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _transient(exc: BaseException) -> bool:
    """Would the same request succeed later (server away or busy), not a bad batch?"""
    if isinstance(exc, httpx.TransportError | ServerNotFound):
        return True
    if isinstance(exc, LapisError):
        status = status_of(exc)
        return (status or 0) >= 500 or status == 429
    return False


def flush_all() -> None:
    """Flush every live writer (the interpreter-exit hook; errors are reported, not raised)."""
    for writer in list(_live):
        try:
            writer.flush()
        except Exception as exc:  # at exit there is no caller left to raise to
            print(f"lapis: flushing run {writer.run_id} failed: {exc}", file=sys.stderr)


def _after_fork_in_child() -> None:
    """A forked child gets fresh locks and its own sender; the parent sends what it had."""
    for writer in list(_live):
        writer._points = []
        writer._params, writer._tags = {}, {}
        writer._reset_sync()
        if writer._thread is not None and not writer._closed:
            writer._start_thread()


atexit.register(flush_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
