"""Registry webhooks with the unmodified mlflow client, delivered to a local receiver:
HMAC-signed deliveries on version creation and alias changes, retries of a failing
receiver, the test call, the private-network guard, and deliveries that survive a
server restart (the outbox is in the metadata store)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities.webhook import WebhookEvent  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

pytestmark = [pytest.mark.timeout(300), pytest.mark.stores("sqlite", "postgres")]
SECRET = "s3cret-for-tests"


class Receiver:
    """A local HTTP endpoint that records each delivery; ``fail_next`` answers 503 first."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.fail_next = 0
        self.retry_after = "0"
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    self.send_response(503)
                    self.send_header("Retry-After", receiver.retry_after)
                    self.end_headers()
                    return
                receiver.got.append({"headers": dict(self.headers), "body": body})
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"thanks")

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, n: int, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.got) >= n, f"{len(self.got)} deliveries, expected {n}"
        return self.got


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def hooked(tmp_path: Path, server_type: Any, point_mlflow: Any) -> Iterator[Any]:
    """A server whose webhooks may call the loopback receiver."""
    server = server_type(home=tmp_path / "home", start_args=["--webhooks-to-private-networks"])
    server.start()
    point_mlflow(server)
    try:
        yield server
    finally:
        server.stop()


def _verify(delivery: dict[str, Any]) -> dict[str, Any]:
    h = {k.lower(): v for k, v in delivery["headers"].items()}
    body = delivery["body"].decode()
    signed = f"{h['x-mlflow-delivery-id']}.{h['x-mlflow-timestamp']}.{body}"
    mac = hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).digest()
    assert h["x-mlflow-signature"] == "v1," + base64.b64encode(mac).decode()
    assert abs(int(h["x-mlflow-timestamp"]) - time.time()) < 120
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def test_signed_deliveries_on_version_and_alias_events(hooked: Any, receiver: Receiver) -> None:
    client = MlflowClient()
    hook = client.create_webhook(
        name="ci",
        url=receiver.url,
        events=[WebhookEvent("model_version", "created"),
                WebhookEvent("model_version_alias", "created")],
        secret=SECRET,
        description="tell CI",
    )  # fmt: skip
    assert client.get_webhook(hook.webhook_id).name == "ci"
    assert [w.webhook_id for w in client.list_webhooks()] == [hook.webhook_id]
    name = f"wh-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)  # not subscribed: no delivery
    with mlflow.start_run() as run:
        mlflow.log_text("weights", "model/w.txt")
    client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_registered_model_alias(name, "champion", "1")
    first, second = receiver.wait_for(2)
    created, alias = _verify(first), _verify(second)
    assert (created["entity"], created["action"]) == ("model_version", "created")
    assert created["data"]["name"] == name and created["data"]["version"] == "1"
    assert created["data"]["run_id"] == run.info.run_id
    assert (alias["entity"], alias["action"]) == ("model_version_alias", "created")
    assert alias["data"] == {"name": name, "alias": "champion", "version": "1"}

    result = client.test_webhook(hook.webhook_id)
    assert result.success and result.response_status == 200 and result.response_body == "thanks"
    assert _verify(receiver.wait_for(3)[2])["data"]["name"] == "example_model"

    client.update_webhook(hook.webhook_id, status="DISABLED")
    client.delete_registered_model_alias(name, "champion")
    client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    time.sleep(1)
    assert len(receiver.got) == 3  # a disabled webhook is sent nothing
    client.delete_webhook(hook.webhook_id)
    with pytest.raises(MlflowException, match="not found"):
        client.get_webhook(hook.webhook_id)


def test_a_failing_receiver_is_retried_and_lapis_model_create_announces(
    hooked: Any, receiver: Receiver, tmp_path: Path
) -> None:
    client = MlflowClient()
    client.create_webhook(
        name="flaky", url=receiver.url, events=[WebhookEvent("model_version", "created")],
        secret=SECRET,
    )  # fmt: skip
    receiver.fail_next = 2  # answered 503 twice, then accepted
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "w.json").write_text("{}")
    from jobkit import lapis_cli

    name = f"lapis-{uuid.uuid4().hex[:6]}"
    done = lapis_cli(hooked, "model", "create", "--name", name, "--path", str(folder))
    assert done.returncode == 0, done.stderr
    (delivery,) = receiver.wait_for(1, timeout=30)
    body = _verify(delivery)
    assert body["data"]["name"] == name and body["data"]["version"] == "1"
    with hooked.client() as http:
        hooks = http.get("/api/2.0/mlflow/webhooks").json()["webhooks"]
        assert hooks[0]["events"] == [{"entity": "MODEL_VERSION", "action": "CREATED"}]
        assert "secret" not in hooks[0]


def test_deliveries_left_pending_are_sent_after_a_restart(
    hooked: Any, receiver: Receiver, point_mlflow: Any
) -> None:
    client = MlflowClient()
    client.create_webhook(
        name="durable", url=receiver.url, events=[WebhookEvent("registered_model", "created")],
        secret=SECRET,
    )  # fmt: skip
    receiver.fail_next = 10**6  # the receiver is down: 503, try again in 3 s
    receiver.retry_after = "3"
    name = f"dur-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)
    time.sleep(0.5)
    hooked.kill9()  # with the delivery pending in the outbox
    receiver.fail_next = 0  # back up
    hooked.start()
    point_mlflow(hooked)
    (delivery,) = receiver.wait_for(1, timeout=60)
    assert _verify(delivery)["data"]["name"] == name


def test_private_addresses_are_refused_unless_allowed(mlflow_env: Any) -> None:
    """The shared server runs with the default: https to public addresses only."""
    client = MlflowClient()
    with pytest.raises(MlflowException, match="scheme 'http'"):
        client.create_webhook(
            name="x",
            url="http://127.0.0.1:9/hook",
            events=[WebhookEvent("model_version", "created")],
        )
    with pytest.raises(MlflowException, match="private, loopback or reserved"):
        client.create_webhook(
            name="x",
            url="https://127.0.0.1:9/hook",
            events=[WebhookEvent("model_version", "created")],
        )
    with mlflow_env.client() as http:
        bad = http.post(
            "/api/2.0/mlflow/webhooks",
            json={
                "name": "x",
                "url": "https://example.com/h",
                "events": [{"entity": "PROMPT", "action": "CREATED"}],
            },
        )
    assert bad.status_code == 400 and "Invalid webhook event 'prompt.created'" in bad.text


def test_the_webhook_cli(hooked: Any, receiver: Receiver) -> None:
    from jobkit import lapis_cli

    def ok(*args: str) -> Any:
        done = lapis_cli(hooked, "webhook", *args, "-o", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    made = ok("create", "-n", "cli", "--url", receiver.url, "-e", "registered_model.created",
              "--secret", SECRET)  # fmt: skip
    hook_id = made["webhook_id"]
    assert [w["webhook_id"] for w in ok("list")] == [hook_id]
    assert ok("test", "--id", hook_id)["success"] is True
    with hooked.client() as http:
        http.post(
            "/api/2.0/mlflow/registered-models/create", json={"name": f"c-{uuid.uuid4().hex[:6]}"}
        ).raise_for_status()
    receiver.wait_for(2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        sent = ok("deliveries", "--id", hook_id)
        if sent and sent[0]["state"] == "delivered":
            break
        time.sleep(0.2)
    assert [(d["event"], d["state"], d["last_status"]) for d in sent] == [
        ("registered_model.created", "delivered", 200)
    ]
    assert ok("update", "--id", hook_id, "--status", "DISABLED")["status"] == "DISABLED"
    bad = lapis_cli(hooked, "webhook", "create", "-n", "x", "--url", receiver.url, "-e", "nope")
    assert bad.returncode == 1 and "entity.action" in bad.stderr
    ok("delete", "--id", hook_id, "--yes")
    assert ok("list") == []
