"""A small pooled HTTP/1.1 client for the scoring proxy → instance hop.

Why not httpx: the proxy forwards thousands of tiny requests a second to
scoring processes on loopback, and a general client's per-request machinery
(URL objects, header models, h11 state machines, anyio) costs more than the
rest of the hop together. This client does exactly one thing: POST a body
on a keep-alive connection and read back a response framed by
``Content-Length``, which the scoring runtime always sends.

Design:

- one :class:`asyncio.Protocol` per connection: bytes accumulate in a
  buffer and the waiting request is woken once the header block and
  ``Content-Length`` bytes are in — no stream reader, no per-line awaits;
- idle connections are kept per (host, port), last in first out; a
  connection closed by the peer marks itself dead and is skipped;
- any error or timeout discards the connection (a late response must never
  be read as the answer to the next request);
- a request that fails on a *reused* connection before a byte came back is
  tried once more on a fresh one (the instance may have closed an idle
  connection); a fresh connection that is refused or reset raises
  :class:`ConnectFailed`, which tells the proxy the instance is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


class UpstreamError(Exception):
    """The instance did not answer properly."""


class ConnectFailed(UpstreamError):
    """Refused, reset or closed before any response byte: the instance is likely dead."""


class UpstreamTimeout(UpstreamError):
    """No complete response within the deadline."""


class BadResponse(UpstreamError):
    """Bytes came back, but not an HTTP/1.1 response with a Content-Length."""


@dataclass(slots=True)
class Response:
    status: int
    content_type: bytes
    body: bytes


class _Connection(asyncio.Protocol):
    __slots__ = (
        "alive",
        "buf",
        "content_type",
        "head_end",
        "length",
        "status",
        "transport",
        "waiter",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[Response] | None = None
        self.head_end = -1
        self.length = -1
        self.alive = True
        self.status = 0
        self.content_type = b"application/json"

    # --- protocol callbacks ------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            self.close()  # bytes nobody asked for: this connection is out of step
            return
        if self.head_end < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            try:
                self._parse_head(end)
            except (ValueError, BadResponse) as exc:
                self.close()
                waiter.set_exception(BadResponse(f"bad response from instance: {exc}"))
                return
        if len(buf) >= self.head_end + self.length:
            self._finish(waiter)

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if self.buf:
                waiter.set_exception(BadResponse("instance closed the connection mid-response"))
            else:
                waiter.set_exception(ConnectFailed(str(exc or "connection closed by instance")))

    # --- helpers -----------------------------------------------------------------------
    def _parse_head(self, end: int) -> None:
        head = bytes(self.buf[:end])
        lines = head.split(b"\r\n")
        status_line = lines[0]
        if not status_line.startswith(b"HTTP/1."):
            raise BadResponse(status_line[:40].decode("latin-1"))
        self.status = int(status_line[9:12])
        length = -1
        content_type = b"application/json"
        keep = True
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value.strip())
            elif lname == b"content-type":
                content_type = value.strip()
            elif lname == b"connection" and value.strip().lower() == b"close":
                keep = False
        if length < 0:
            raise BadResponse("no Content-Length")
        self.head_end = end + 4
        self.length = length
        self.content_type = content_type
        if not keep:
            self.alive = False  # answer this one, then drop the connection

    def _finish(self, waiter: asyncio.Future[Response]) -> None:
        start = self.head_end
        stop = start + self.length
        body = bytes(self.buf[start:stop])
        extra = len(self.buf) > stop
        response = Response(self.status, self.content_type, body)
        self.buf = bytearray()
        self.head_end = -1
        self.length = -1
        if extra:
            self.close()  # more bytes than one response: never reuse
        waiter.set_result(response)

    def close(self) -> None:
        self.alive = False
        if self.transport is not None:
            self.transport.close()


class UpstreamPool:
    """Keep-alive connections to scoring instances, per (host, port)."""

    def __init__(self, max_idle_per_host: int = 256, connect_timeout: float = 5.0) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self.max_idle_per_host = max_idle_per_host
        self.connect_timeout = connect_timeout

    async def post(
        self,
        address: tuple[str, int],
        path: bytes,
        body: bytes,
        headers: bytes,
        timeout: float,
    ) -> Response:
        """POST ``body`` to ``address``; ``headers`` are extra ``Name: value\\r\\n`` lines.

        Raises :class:`UpstreamTimeout` after ``timeout`` seconds in all,
        :class:`ConnectFailed` when the instance cannot be reached.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        host, port = address
        request = b"".join(
            (
                b"POST ",
                path,
                b" HTTP/1.1\r\nHost: ",
                f"{host}:{port}".encode(),
                b"\r\nContent-Length: ",
                str(len(body)).encode(),
                b"\r\n",
                headers,
                b"\r\n",
                body,
            )
        )
        conn = self._take(address)
        if conn is not None:
            try:
                return await self._exchange(loop, address, conn, request, deadline)
            except ConnectFailed:
                pass  # a stale keep-alive connection: try once on a fresh one
        conn = await self._connect(loop, address, deadline)
        return await self._exchange(loop, address, conn, request, deadline)

    def discard(self, address: tuple[str, int]) -> None:
        """Close the idle connections to an instance that went away."""
        for conn in self._idle.pop(address, []):
            conn.close()

    def close(self) -> None:
        for address in list(self._idle):
            self.discard(address)

    # --- internals -----------------------------------------------------------------------
    def _take(self, address: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(address)
        while idle:
            conn = idle.pop()
            if conn.alive:
                return conn
        return None

    def _give_back(self, address: tuple[str, int], conn: _Connection) -> None:
        if not conn.alive:
            conn.close()
            return
        idle = self._idle.setdefault(address, [])
        if len(idle) < self.max_idle_per_host:
            idle.append(conn)
        else:
            conn.close()

    async def _connect(
        self, loop: asyncio.AbstractEventLoop, address: tuple[str, int], deadline: float
    ) -> _Connection:
        wait = min(self.connect_timeout, deadline - loop.time())
        if wait <= 0:
            raise UpstreamTimeout("timed out before connecting")
        try:
            async with asyncio.timeout(wait):
                _, conn = await loop.create_connection(_Connection, address[0], address[1])
        except TimeoutError:
            raise UpstreamTimeout("timed out connecting to the instance") from None
        except OSError as exc:  # refused, unreachable, reset
            raise ConnectFailed(f"cannot connect to {address[0]}:{address[1]}: {exc}") from None
        return conn

    async def _exchange(
        self,
        loop: asyncio.AbstractEventLoop,
        address: tuple[str, int],
        conn: _Connection,
        request: bytes,
        deadline: float,
    ) -> Response:
        waiter: asyncio.Future[Response] = loop.create_future()
        conn.waiter = waiter
        transport = conn.transport
        assert transport is not None
        timer = loop.call_at(deadline, _expire, conn, waiter)
        ok = False
        try:
            transport.write(request)
            response = await waiter
            ok = True
            return response
        finally:
            timer.cancel()
            conn.waiter = None
            if ok:
                self._give_back(address, conn)
            else:
                conn.close()


def _expire(conn: _Connection, waiter: asyncio.Future[Response]) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamTimeout("no response in time"))
    with contextlib.suppress(Exception):
        conn.close()
