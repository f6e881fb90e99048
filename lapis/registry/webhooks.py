"""Registry webhooks, as MLflow 3 has them: a POST to a URL when a registered model or
a model version is created, a version's tag is set or deleted, or an alias is set or
deleted.

Deliveries follow MLflow's (Standard Webhooks) shape: the body is
``{"entity", "action", "timestamp", "data"}``; ``X-MLflow-Delivery-Id`` and
``X-MLflow-Timestamp`` head it, and with a secret ``X-MLflow-Signature`` is
``v1,<base64 HMAC-SHA256 of "<delivery id>.<timestamp>.<body>">`` so the receiver
can check the sender and reject replays.

Unlike a fire-and-forget thread, an event is first written to an outbox table in
the metadata store and a sender thread works it off, retrying with exponential
back-off (``Retry-After`` honoured) on network errors, 408, 429 and 5xx answers —
a server restart mid-retry resumes where it stopped. Other 4xx answers fail at once.

The server only calls out where it is allowed to: https URLs to public addresses,
as MLflow's default; ``lapis server --webhooks-to-private-networks``
(``LAPIS_WEBHOOKS_PRIVATE=1``) also allows http and private, loopback and
link-local addresses, for receivers on the same network.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from lapis.entities.auth import Principal
from lapis.errors import InvalidParameterValue, ResourceDoesNotExist
from lapis.store.sealed import Sealer
from lapis.store.sql.engine import Database
from lapis.store.sql.webhooks import Delivery, WebhookRow, WebhookStore
from lapis.util import now_ms

log = logging.getLogger("lapis.webhooks")

EVENTS = (
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
)
STATUSES = ("ACTIVE", "DISABLED")
MAX_ATTEMPTS = 4  # the first try and three retries, as MLflow's default
BACKOFF_S = 1.0  # 1, 2, 4 s between tries
MAX_BACKOFF_S = 60.0
TIMEOUT_S = 30.0
RETRYABLE = {408, 429, 500, 502, 503, 504}
EXAMPLES: dict[str, dict[str, Any]] = {
    "registered_model.created": {
        "name": "example_model",
        "tags": {"example_key": "example_value"},
        "description": "An example registered model",
    },
    "model_version.created": {
        "name": "example_model",
        "version": "1",
        "source": "models:/123",
        "run_id": "abcd1234abcd5678",
        "tags": {"example_key": "example_value"},
        "description": "An example model version",
    },
    "model_version_tag.set": {
        "name": "example_model",
        "version": "1",
        "key": "example_key",
        "value": "example_value",
    },
    "model_version_tag.deleted": {"name": "example_model", "version": "1", "key": "example_key"},
    "model_version_alias.created": {
        "name": "example_model",
        "alias": "example_alias",
        "version": "1",
    },
    "model_version_alias.deleted": {"name": "example_model", "alias": "example_alias"},
}


@dataclass
class Webhook:
    webhook_id: str
    name: str
    description: str | None
    url: str
    events: list[str]
    status: str
    creation_timestamp: int
    last_updated_timestamp: int
    has_secret: bool


@dataclass
class TestResult:
    success: bool
    response_status: int | None
    response_body: str | None
    error_message: str | None


def _public(row: WebhookRow) -> Webhook:
    return Webhook(
        webhook_id=row.webhook_id,
        name=row.name,
        description=row.description,
        url=row.url,
        events=list(row.events),
        status=row.status,
        creation_timestamp=row.creation_timestamp,
        last_updated_timestamp=row.last_updated_timestamp,
        has_secret=bool(row.secret),
    )


def sign(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    """``v1,<base64 HMAC-SHA256>`` over ``"<delivery id>.<timestamp>.<body>"``."""
    mac = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


class WebhookService:
    def __init__(self, db: Database, sealer: Sealer, private_networks: bool = False) -> None:
        self.store = WebhookStore(db)
        self.sealer = sealer
        self.private_networks = private_networks
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None

    # --- subscriptions ---------------------------------------------------------------
    def create(
        self,
        name: object,
        url: object,
        events: Sequence[object],
        description: str | None = None,
        secret: str | None = None,
        status: str | None = None,
        principal: Principal | None = None,
    ) -> Webhook:
        now = now_ms()
        row = WebhookRow(
            webhook_id=uuid.uuid4().hex,
            name=self._name(name),
            description=description or None,
            url=self.check_url(url),
            events=self._events(events),
            status=self._status(status or "ACTIVE"),
            secret=self.sealer.seal(secret) if secret else None,
            created_by=principal.name if principal else None,
            creation_timestamp=now,
            last_updated_timestamp=now,
        )
        self.store.insert(row)
        return _public(row)

    def get(self, webhook_id: str) -> Webhook:
        return _public(self.store.get(webhook_id))

    def all(self) -> list[Webhook]:
        return [_public(r) for r in self.store.all()]

    def update(self, webhook_id: str, **changes: Any) -> Webhook:
        self.store.get(webhook_id)
        values: dict[str, Any] = {}
        if changes.get("name") is not None:
            values["name"] = self._name(changes["name"])
        if changes.get("description") is not None:
            values["description"] = changes["description"] or None
        if changes.get("url") is not None:
            values["url"] = self.check_url(changes["url"])
        if changes.get("events"):
            values["events"] = self._events(changes["events"])
        if changes.get("status") is not None:
            values["status"] = self._status(changes["status"])
        if changes.get("secret") is not None:
            values["secret"] = self.sealer.seal(changes["secret"]) if changes["secret"] else None
        if values:
            values["last_updated_timestamp"] = now_ms()
            self.store.update(webhook_id, **values)
        return self.get(webhook_id)

    def delete(self, webhook_id: str) -> None:
        self.store.get(webhook_id)
        self.store.delete(webhook_id)

    def deliveries(self, webhook_id: str, limit: int = 50) -> list[Delivery]:
        self.store.get(webhook_id)
        return self.store.deliveries(webhook_id, limit)

    # --- checks ----------------------------------------------------------------------
    @staticmethod
    def _name(name: object) -> str:
        if not isinstance(name, str) or not name.strip() or len(name) > 256:
            raise InvalidParameterValue("Webhook name must be 1 to 256 characters")
        return name.strip()

    @staticmethod
    def _events(events: Sequence[object]) -> list[str]:
        if not events:
            raise InvalidParameterValue("Webhook events must name at least one event")
        out: list[str] = []
        for e in events:
            if isinstance(e, dict):
                e = f"{str(e.get('entity', '')).lower()}.{str(e.get('action', '')).lower()}"
            text = str(e)
            if text not in EVENTS:
                raise InvalidParameterValue(
                    f"Invalid webhook event {text!r}; this workspace sends: {', '.join(EVENTS)}"
                )
            if text not in out:
                out.append(text)
        return out

    @staticmethod
    def _status(status: object) -> str:
        text = str(status).upper()
        if text not in STATUSES:
            raise InvalidParameterValue(
                f"Webhook status must be ACTIVE or DISABLED, got {status!r}"
            )
        return text

    def check_url(self, url: object) -> str:
        """A URL the server may call: https to a public address, unless private networks
        are allowed (then http and private addresses too)."""
        if not isinstance(url, str) or not url.strip():
            raise InvalidParameterValue("Webhook URL must be a non-empty string")
        parts = urlsplit(url.strip())
        schemes = ("https", "http") if self.private_networks else ("https",)
        if parts.scheme not in schemes:
            raise InvalidParameterValue(
                f"Invalid webhook URL scheme {parts.scheme!r}; allowed: {', '.join(schemes)}"
                + (
                    ""
                    if self.private_networks
                    else " (start the server with --webhooks-to-private-networks to allow "
                    "http on your network)"
                )
            )
        if not parts.hostname:
            raise InvalidParameterValue(f"Webhook URL must include a host name: {url!r}")
        if not self.private_networks:
            self._refuse_private(parts.hostname)
        return url.strip()

    @staticmethod
    def _refuse_private(host: str) -> None:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return  # unknown now; checked again before each delivery
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if not address.is_global:
                raise InvalidParameterValue(
                    f"Webhook URL host {host!r} is a private, loopback or reserved address "
                    f"({address}); start the server with --webhooks-to-private-networks to "
                    "allow receivers on your own network"
                )

    # --- events ----------------------------------------------------------------------
    def emit(self, entity: str, action: str, data: dict[str, Any]) -> None:
        """Queue a delivery to every active webhook subscribed to ``entity.action``."""
        event = f"{entity}.{action}"
        targets = [w for w in self.store.all() if w.status == "ACTIVE" and event in w.events]
        if not targets:
            return
        now = now_ms()
        body = json.dumps(
            {
                "entity": entity,
                "action": action,
                "timestamp": datetime.now(UTC).isoformat(),
                "data": data,
            }
        )
        self.store.enqueue(
            [
                Delivery(
                    delivery_id=str(uuid.uuid4()),
                    webhook_id=w.webhook_id,
                    event=event,
                    payload=body,
                    state="pending",
                    attempts=0,
                    next_attempt_at=now,
                    last_status=None,
                    last_error=None,
                    created_at=now,
                    updated_at=now,
                )
                for w in targets
            ]
        )
        self._wake.set()

    def test(self, webhook_id: str, event: str | None = None) -> TestResult:
        """Send an example payload now (once, no retries) and say how the receiver answered."""
        row = self.store.get(webhook_id)
        chosen = self._events([event])[0] if event else row.events[0]
        entity, _, action = chosen.partition(".")
        body = json.dumps(
            {
                "entity": entity,
                "action": action,
                "timestamp": datetime.now(UTC).isoformat(),
                "data": EXAMPLES[chosen],
            }
        )
        try:
            resp = self._send(row, str(uuid.uuid4()), body)
        except (httpx.HTTPError, InvalidParameterValue) as exc:
            return TestResult(False, None, None, str(exc))
        return TestResult(resp.is_success, resp.status_code, resp.text[:1000], None)

    # --- the sender --------------------------------------------------------------------
    def _send(self, row: WebhookRow, delivery_id: str, body: str) -> httpx.Response:
        if not self.private_networks:
            host = urlsplit(row.url).hostname or ""
            self._refuse_private(host)  # again: the name may resolve elsewhere by now
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-MLflow-Delivery-Id": delivery_id,
            "X-MLflow-Timestamp": timestamp,
            "User-Agent": "lapis-webhooks",
        }
        if row.secret:
            headers["X-MLflow-Signature"] = sign(
                self.sealer.open(row.secret), delivery_id, timestamp, body
            )
        if self._client is None:
            self._client = httpx.Client(timeout=TIMEOUT_S, follow_redirects=False, trust_env=False)
        return self._client.post(row.url, content=body.encode(), headers=headers)

    def deliver_due(self) -> int:
        """Try every delivery that is due once; how many were tried."""
        due = self.store.due(now_ms())
        for d in due:
            self._attempt(d)
        return len(due)

    def _attempt(self, d: Delivery) -> None:
        try:
            row = self.store.get(d.webhook_id)
        except ResourceDoesNotExist:
            self.store.record(d.delivery_id, state="failed", last_error="webhook deleted")
            return
        attempts = d.attempts + 1
        status: int | None = None
        retry_after: float | None = None
        try:
            resp = self._send(row, d.delivery_id, d.payload)
            status = resp.status_code
            error = None if resp.is_success else f"answered {status}: {resp.text[:200]}"
            retry_after = _retry_after(resp.headers.get("retry-after"))
        except (httpx.HTTPError, InvalidParameterValue) as exc:
            error = f"{type(exc).__name__}: {exc}"
        now = now_ms()
        if error is None:
            self.store.record(
                d.delivery_id,
                state="delivered",
                attempts=attempts,
                last_status=status,
                last_error=None,
                updated_at=now,
            )
            return
        retryable = status is None or status in RETRYABLE
        if retryable and attempts < MAX_ATTEMPTS:
            wait = retry_after if retry_after is not None else BACKOFF_S * 2 ** (attempts - 1)
            self.store.record(
                d.delivery_id,
                attempts=attempts,
                last_status=status,
                last_error=error,
                next_attempt_at=now + int(min(wait, MAX_BACKOFF_S) * 1000),
                updated_at=now,
            )
            return
        log.warning("webhook %s: delivery %s failed: %s", row.name, d.delivery_id, error)
        self.store.record(
            d.delivery_id,
            state="failed",
            attempts=attempts,
            last_status=status,
            last_error=error,
            updated_at=now,
        )

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lapis-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=TIMEOUT_S + 5)
            self._thread = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_due()
                nxt = self.store.next_due()
            except Exception:  # the database may be briefly unavailable: try again later
                log.exception("webhook sender")
                nxt = None
            wait = 5.0 if nxt is None else max(0.0, (nxt - now_ms()) / 1000)
            self._wake.wait(timeout=min(wait, 5.0))
            self._wake.clear()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
