"""Registry webhooks and their delivery outbox."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update

from lapis.errors import ResourceDoesNotExist
from lapis.store.sql.engine import Database
from lapis.store.sql.tables import webhook_deliveries, webhooks


@dataclass
class WebhookRow:
    webhook_id: str
    name: str
    description: str | None
    url: str
    events: list[str]
    status: str
    secret: str | None  # sealed
    created_by: str | None
    creation_timestamp: int
    last_updated_timestamp: int


@dataclass
class Delivery:
    delivery_id: str
    webhook_id: str
    event: str
    payload: str
    state: str
    attempts: int
    next_attempt_at: int
    last_status: int | None
    last_error: str | None
    created_at: int
    updated_at: int


def _webhook(r: Any) -> WebhookRow:
    return WebhookRow(
        webhook_id=r.webhook_id,
        name=r.name,
        description=r.description,
        url=r.url,
        events=json.loads(r.events),
        status=r.status,
        secret=r.secret,
        created_by=r.created_by,
        creation_timestamp=r.creation_timestamp,
        last_updated_timestamp=r.last_updated_timestamp,
    )


def _delivery(r: Any) -> Delivery:
    return Delivery(**{c: getattr(r, c) for c in Delivery.__dataclass_fields__})


class WebhookStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, w: WebhookRow) -> None:
        with self.db.write() as conn:
            values = {**w.__dict__, "events": json.dumps(w.events)}
            conn.execute(insert(webhooks).values(**values))

    def get(self, webhook_id: str) -> WebhookRow:
        with self.db.read() as conn:
            r = conn.execute(select(webhooks).where(webhooks.c.webhook_id == webhook_id)).first()
        if r is None:
            raise ResourceDoesNotExist(f"Webhook with ID {webhook_id} not found.")
        return _webhook(r)

    def all(self) -> list[WebhookRow]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(webhooks).order_by(webhooks.c.creation_timestamp.desc())
            ).all()
        return [_webhook(r) for r in rows]

    def update(self, webhook_id: str, **values: Any) -> None:
        if "events" in values:
            values["events"] = json.dumps(values["events"])
        with self.db.write() as conn:
            conn.execute(
                update(webhooks).where(webhooks.c.webhook_id == webhook_id).values(**values)
            )

    def delete(self, webhook_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(delete(webhooks).where(webhooks.c.webhook_id == webhook_id))
            conn.execute(
                update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.webhook_id == webhook_id,
                    webhook_deliveries.c.state == "pending",
                )
                .values(state="failed", last_error="the webhook was deleted")
            )

    # --- the outbox -----------------------------------------------------------------
    def enqueue(self, rows: Sequence[Delivery]) -> None:
        if not rows:
            return
        with self.db.write() as conn:
            conn.execute(insert(webhook_deliveries), [r.__dict__ for r in rows])

    def due(self, now: int, limit: int = 50) -> list[Delivery]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(webhook_deliveries)
                .where(
                    webhook_deliveries.c.state == "pending",
                    webhook_deliveries.c.next_attempt_at <= now,
                )
                .order_by(webhook_deliveries.c.next_attempt_at)
                .limit(limit)
            ).all()
        return [_delivery(r) for r in rows]

    def next_due(self) -> int | None:
        with self.db.read() as conn:
            found = conn.execute(
                select(webhook_deliveries.c.next_attempt_at)
                .where(webhook_deliveries.c.state == "pending")
                .order_by(webhook_deliveries.c.next_attempt_at)
                .limit(1)
            ).scalar()
        return None if found is None else int(found)

    def record(self, delivery_id: str, **values: Any) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.delivery_id == delivery_id)
                .values(**values)
            )

    def deliveries(self, webhook_id: str, limit: int = 50) -> list[Delivery]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(webhook_deliveries)
                .where(webhook_deliveries.c.webhook_id == webhook_id)
                .order_by(webhook_deliveries.c.created_at.desc())
                .limit(limit)
            ).all()
        return [_delivery(r) for r in rows]
