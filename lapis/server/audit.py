"""The audit trail: every write request — who, which action, what, when, from where,
and how it ended — appended to the ``audit_log`` table.

Recorded as plain ASGI middleware (so no route can skip it) after the response
has started, when the status is known; refusals (401, 403) are recorded too,
since a refused attempt is what an operator looks for. Rows are buffered and
written in one insert every quarter second by a background thread, so logging
a metric does not pay for a second transaction; ``flush`` runs at shutdown and
before every read of the log. The price: on kill -9, the last quarter second
of audit rows can be lost (never an acknowledged write itself).

No route updates or deletes audit rows; reading them needs
``workspaces/audit/read`` (Owners).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lapis.store.sql.audit import AuditStore
from lapis.util import now_ms

log = logging.getLogger("lapis.audit")
READS = frozenset({"GET", "HEAD", "OPTIONS"})
FLUSH_SECONDS = 0.25


class AuditWriter:
    def __init__(self, store: AuditStore) -> None:
        self.store = store
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._rows.append(row)

    def query(
        self,
        user: str | None = None,
        since: int | None = None,
        action: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Recorded writes, newest first, after flushing what is still buffered."""
        self.flush()
        return self.store.query(user, since, action, limit, before_id)

    def flush(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
        if rows:
            try:
                self.store.append(rows)
            except Exception:
                log.exception(
                    "writing %d audit rows failed; keeping them for the next try", len(rows)
                )
                with self._lock:
                    self._rows[:0] = rows

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(FLUSH_SECONDS):
                self.flush()

        self._thread = threading.Thread(target=loop, name="lapis-audit", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.flush()


class AuditTrail:
    def __init__(self, app: ASGIApp, writer: AuditWriter) -> None:
        self.app = app
        self.writer = writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READS:
            await self.app(scope, receive, send)
            return
        status = 500

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            self.writer.record(audit_row(scope, status))


def audit_row(scope: Scope, status: int) -> dict[str, Any]:
    """One write request as the audit trail keeps it (who, what, how it ended)."""
    state = scope.get("state") or {}
    principal = state.get("principal")
    path = scope.get("path", "")
    action = state.get("action") or ("signin" if path == "/signin" else "(not routed)")
    client = scope.get("client")
    return {
        "time": now_ms(),
        "user_name": getattr(principal, "name", None),
        "user_id": getattr(principal, "user_id", None),
        "token_id": getattr(principal, "token_id", None),
        "job": principal.job.job if principal is not None and principal.job else None,
        "action": action,
        "method": scope["method"],
        "path": path[:2000],
        "status": status,
        "allowed": status not in (401, 403),
        "client": client[0] if client else None,
    }
