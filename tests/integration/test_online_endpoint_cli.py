"""``lapis online-endpoint …`` against a real server, as a subprocess, on each metadata store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Protocol

LAPIS = str(Path(sys.executable).parent / "lapis")

YAML = """\
$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json
name: {name}
auth_mode: key
description: endpoint for the CLI test
tags: {{team: ml}}
traffic: {{}}
"""


class Server(Protocol):
    url: str
    env: dict[str, str]


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LAPIS_", "MLFLOW_"))}
    return subprocess.run(
        [LAPIS, *args],
        env={**base, "COLUMNS": "200", **server.env},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def ok_json(server: Server, *args: str) -> Any:
    proc = cli(server, *args, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def fails(server: Server, *args: str, match: str) -> str:
    proc = cli(server, *args)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    assert match in line, line
    return line


def test_endpoint_lifecycle(lapis_server: Any, tmp_path: Path) -> None:
    name = f"ep-{uuid.uuid4().hex[:8]}"
    spec = tmp_path / "endpoint.yml"
    spec.write_text(YAML.format(name=name))
    created = ok_json(lapis_server, "online-endpoint", "create", "-f", str(spec))
    assert created["name"] == name and created["provisioning_state"] == "Succeeded"

    shown = ok_json(lapis_server, "online-endpoint", "show", name)
    assert shown["scoring_uri"] == f"{lapis_server.url}/api/v1/endpoints/{name}/score"
    assert shown["traffic"] == {} and shown["tags"] == {"team": "ml"}
    table = cli(lapis_server, "online-endpoint", "show", name)
    assert table.returncode == 0 and "scoring_uri" in table.stdout and "traffic" in table.stdout
    listed = ok_json(lapis_server, "online-endpoint", "list")
    assert name in [e["name"] for e in listed]

    keys = ok_json(lapis_server, "online-endpoint", "get-credentials", name)
    assert set(keys) == {"primaryKey", "secondaryKey"}
    ok_json(lapis_server, "online-endpoint", "regenerate-keys", name, "--key-type", "secondary")
    after = ok_json(lapis_server, "online-endpoint", "get-credentials", name)
    assert after["primaryKey"] == keys["primaryKey"]
    assert after["secondaryKey"] != keys["secondaryKey"]

    # Traffic names deployments, so it is refused until they exist (the deployment
    # tests set real splits).
    fails(
        lapis_server,
        "online-endpoint",
        "update",
        name,
        "--traffic",
        "blue=90",
        "green=10",
        match="has no deployment 'blue'",
    )
    assert ok_json(lapis_server, "online-endpoint", "show", name)["traffic"] == {}

    fails(lapis_server, "online-endpoint", "create", "-f", str(spec), match="already exists")
    deleted = ok_json(lapis_server, "online-endpoint", "delete", name, "--yes")
    assert deleted == {"name": name, "deleted": True}
    fails(lapis_server, "online-endpoint", "show", name, match="does not exist")


def test_bad_inputs_exit_1_with_one_line(lapis_server: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("name: ok-name\nauth_mode: aad_token\n")
    fails(lapis_server, "online-endpoint", "create", "-f", str(bad), match="bad.yml:2")
    bad.write_text("name: ok-name\nkind: managed\n")
    fails(lapis_server, "online-endpoint", "create", "-f", str(bad), match="'kind'")
    fails(lapis_server, "online-endpoint", "create", "--name", "1bad", match="start with a letter")

    name = f"ep-{uuid.uuid4().hex[:8]}"
    ok_json(lapis_server, "online-endpoint", "create", "--name", name)
    fails(
        lapis_server,
        "online-endpoint",
        "update",
        name,
        "--traffic",
        "blue=90",
        "green=20",
        match="total 100",
    )
    fails(lapis_server, "online-endpoint", "update", name, "--traffic", "blue=x", match="percent")
    fails(
        lapis_server,
        "online-endpoint",
        "regenerate-keys",
        name,
        "--key-type",
        "tertiary",
        match="primary or secondary",
    )
    fails(lapis_server, "online-endpoint", "get-credentials", "nope-ep", match="does not exist")
