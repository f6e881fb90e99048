"""``lapis webhook …``: registry webhooks (MLflow 3's), and what was delivered to them."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.markup import escape
from rich.table import Table

from lapis.cli._common import (
    OutputFormat,
    OutputOption,
    YesOption,
    client,
    console,
    delete_and_report,
    fmt_time,
    output_format,
    print_json,
)
from lapis.errors import InvalidParameterValue

app = typer.Typer(
    help="Registry webhooks: POSTs to a URL when models, versions, tags or aliases change.",
    no_args_is_help=True,
)
BASE = "/api/2.0/mlflow/webhooks"
IdOption = Annotated[str, typer.Option("--id", "-i", help="The webhook's id (webhook list).")]


def _event(text: str) -> dict[str, str]:
    entity, dot, action = text.partition(".")
    if not dot:
        raise InvalidParameterValue(
            f"--event {text!r}: write it as entity.action, e.g. model_version.created"
        )
    return {"entity": entity.upper(), "action": action.upper()}


def _events(w: dict[str, Any]) -> str:
    return ", ".join(f"{e['entity'].lower()}.{e['action'].lower()}" for e in w["events"])


def _show(w: dict[str, Any], fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        print_json(w)
        return
    grid = Table.grid(padding=(0, 2))
    for key, value in (
        ("id", w["webhook_id"]),
        ("name", w["name"]),
        ("url", w["url"]),
        ("events", _events(w)),
        ("status", w["status"]),
        ("description", w.get("description") or "-"),
        ("created", fmt_time(w.get("creation_timestamp"))),
    ):
        grid.add_row(key, escape(str(value)))
    console().print(grid)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", "-n", help="A name people recognise.")],
    url: Annotated[
        str,
        typer.Option(
            "--url",
            help="Where to POST (https, or http on --webhooks-to-private-networks servers).",
        ),
    ],
    event: Annotated[
        list[str],
        typer.Option(
            "--event",
            "-e",
            help="entity.action, repeatable: registered_model.created, model_version.created, "
            "model_version_tag.set|deleted, model_version_alias.created|deleted.",
        ),
    ],
    secret: Annotated[
        str | None,
        typer.Option("--secret", help="Signs each delivery (X-MLflow-Signature, HMAC-SHA256)."),
    ] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    output: OutputOption = None,
) -> None:
    """Subscribe a URL to registry events."""
    body: dict[str, Any] = {"name": name, "url": url, "events": [_event(e) for e in event]}
    if secret:
        body["secret"] = secret
    if description:
        body["description"] = description
    with client(ctx) as http:
        w = http.post(BASE, body)["webhook"]
    _show(w, output_format(ctx, output))


@app.command("list")
def list_webhooks(ctx: typer.Context, output: OutputOption = None) -> None:
    """The workspace's webhooks."""
    with client(ctx) as http:
        found = http.get(BASE)["webhooks"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(found)
        return
    table = Table("id", "name", "status", "events", "url")
    for w in found:
        table.add_row(w["webhook_id"], escape(w["name"]), w["status"], _events(w), escape(w["url"]))
    console().print(table)


@app.command("show")
def show(ctx: typer.Context, webhook_id: IdOption, output: OutputOption = None) -> None:
    """One webhook."""
    with client(ctx) as http:
        w = http.get(f"{BASE}/{quote(webhook_id, safe='')}")["webhook"]
    _show(w, output_format(ctx, output))


@app.command("update")
def update(
    ctx: typer.Context,
    webhook_id: IdOption,
    status: Annotated[str | None, typer.Option("--status", help="ACTIVE or DISABLED.")] = None,
    url: Annotated[str | None, typer.Option("--url")] = None,
    event: Annotated[list[str] | None, typer.Option("--event", "-e")] = None,
    secret: Annotated[str | None, typer.Option("--secret")] = None,
    output: OutputOption = None,
) -> None:
    """Change a webhook's status, URL, events or secret."""
    body: dict[str, Any] = {k: v for k, v in (("status", status), ("url", url),
                                              ("secret", secret)) if v is not None}  # fmt: skip
    if event:
        body["events"] = [_event(e) for e in event]
    with client(ctx) as http:
        w = http.request("PATCH", f"{BASE}/{quote(webhook_id, safe='')}", json_body=body).json()[
            "webhook"
        ]
    _show(w, output_format(ctx, output))


@app.command("test")
def test(ctx: typer.Context, webhook_id: IdOption, output: OutputOption = None) -> None:
    """Send an example event now and show how the receiver answered."""
    with client(ctx) as http:
        result = http.post(f"{BASE}/{quote(webhook_id, safe='')}/test", {})["result"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(result)
    else:
        shown = result.get("response_status") or result.get("error_message")
        console().print(("delivered: " if result["success"] else "not delivered: ") + str(shown))
    if not result["success"]:
        raise typer.Exit(1)


@app.command("deliveries")
def deliveries(
    ctx: typer.Context,
    webhook_id: IdOption,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    output: OutputOption = None,
) -> None:
    """What was sent to a webhook: each event's state, tries and the last answer."""
    with client(ctx) as http:
        found = http.get(f"/api/v1/webhooks/{quote(webhook_id, safe='')}/deliveries", limit=limit)[
            "deliveries"
        ]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(found)
        return
    table = Table("delivery", "event", "state", "tries", "answer", "at")
    for d in found:
        answer = str(d["last_status"] or "") or escape((d["last_error"] or "")[:60])
        table.add_row(d["delivery_id"][:8], d["event"], d["state"], str(d["attempts"]), answer,
                      fmt_time(d["updated_at"]))  # fmt: skip
    console().print(table)


@app.command("delete")
def delete(
    ctx: typer.Context, webhook_id: IdOption, yes: YesOption = False, output: OutputOption = None
) -> None:
    """Delete a webhook (deliveries still pending are dropped)."""
    delete_and_report(
        ctx, f"webhook {webhook_id}", f"{BASE}/{quote(webhook_id, safe='')}", yes, output
    )
