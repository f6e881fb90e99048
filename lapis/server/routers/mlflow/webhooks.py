"""MLflow 3 registry webhooks (``MlflowClient.create_webhook`` and friends)."""

from __future__ import annotations

from typing import Any

from lapis.errors import InvalidParameterValue
from lapis.registry.webhooks import TestResult, Webhook
from lapis.server.routers.mlflow._handler import Args, Ctx, Route


def webhook_json(w: Webhook) -> dict[str, Any]:
    """MLflow's ``Webhook`` proto JSON (the secret never leaves the server)."""
    out: dict[str, Any] = {
        "webhook_id": w.webhook_id,
        "name": w.name,
        "url": w.url,
        "events": [
            {"entity": e.split(".")[0].upper(), "action": e.split(".")[1].upper()} for e in w.events
        ],
        "status": w.status,
        "creation_timestamp": w.creation_timestamp,
        "last_updated_timestamp": w.last_updated_timestamp,
    }
    if w.description:
        out["description"] = w.description
    return out


def _events(a: Args) -> list[str]:
    out = []
    for e in a.list("events"):
        if not isinstance(e, dict):
            raise InvalidParameterValue(
                f"Invalid webhook event {e!r}: expected {{'entity': ..., 'action': ...}}"
            )
        out.append(f"{str(e.get('entity', '')).lower()}.{str(e.get('action', '')).lower()}")
    return out


def create(a: Args, c: Ctx) -> dict[str, Any]:
    w = c.ws.webhooks.create(
        a.req_str("name"),
        a.req_str("url"),
        _events(a),
        description=a.str("description"),
        secret=a.str("secret"),
        status=a.str("status"),
        principal=c.principal,
    )
    return {"webhook": webhook_json(w)}


def list_webhooks(a: Args, c: Ctx) -> dict[str, Any]:
    return {"webhooks": [webhook_json(w) for w in c.ws.webhooks.all()]}


def get(a: Args, c: Ctx) -> dict[str, Any]:
    return {"webhook": webhook_json(c.ws.webhooks.get(c.path["webhook_id"]))}


def update(a: Args, c: Ctx) -> dict[str, Any]:
    w = c.ws.webhooks.update(
        c.path["webhook_id"],
        name=a.str("name"),
        description=a.str("description"),
        url=a.str("url"),
        events=_events(a) or None,
        secret=a.str("secret"),
        status=a.str("status"),
    )
    return {"webhook": webhook_json(w)}


def delete(a: Args, c: Ctx) -> dict[str, Any]:
    c.ws.webhooks.delete(c.path["webhook_id"])
    return {}


def test(a: Args, c: Ctx) -> dict[str, Any]:
    """Send an example event now and say how the receiver answered."""
    raw = a.raw("event")
    event = None
    if isinstance(raw, dict):
        event = f"{str(raw.get('entity', '')).lower()}.{str(raw.get('action', '')).lower()}"
    result: TestResult = c.ws.webhooks.test(c.path["webhook_id"], event)
    out: dict[str, Any] = {"success": result.success}
    for key in ("response_status", "response_body", "error_message"):
        value = getattr(result, key)
        if value is not None:
            out[key] = value
    return {"result": out}


ROUTES: list[Route] = [
    ("POST", "/webhooks", create),
    ("GET", "/webhooks", list_webhooks),
    ("GET", "/webhooks/{webhook_id}", get),
    ("PATCH", "/webhooks/{webhook_id}", update),
    ("DELETE", "/webhooks/{webhook_id}", delete),
    ("POST", "/webhooks/{webhook_id}/test", test),
]
