"""``auth_mode: aml_token`` endpoints: callers score with short-lived tokens from
``get-credentials`` (the CLI and SDK fetch one per call), never with the keys."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx
from jobkit import lapis_cli

from lapis.ml import MLClient
from lapis.ml.entities import EndpointAuthToken

FILES = Path(__file__).parent / "files" / "online"


def _json(server: Any, *args: str) -> Any:
    done = lapis_cli(server, *args, "-o", "json")
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return json.loads(done.stdout) if done.stdout.strip() else None


def test_an_aml_token_endpoint_takes_tokens_not_keys(lapis_server: Any, tmp_path: Path) -> None:
    name = f"tok-{uuid.uuid4().hex[:6]}"
    folder = tmp_path / "online"
    shutil.copytree(FILES, folder)
    for yml in folder.glob("*.yml"):
        yml.write_text(yml.read_text().replace("compat-endpoint", name))
    made = _json(
        lapis_server, "online-endpoint", "create", "-f", str(folder / "endpoint-aml-token.yml")
    )
    assert made["auth_mode"] == "aml_token"
    _json(lapis_server, "online-deployment", "create", "-f", str(folder / "folder.yml"),
          "--all-traffic")  # fmt: skip
    creds = _json(lapis_server, "online-endpoint", "get-credentials", "-n", name)
    assert set(creds) == {"accessToken", "tokenType", "expiryTimeUtc", "refreshAfterTimeUtc"}
    scored = _json(
        lapis_server, "online-endpoint", "invoke", "-n", name,
        "--request-file", str(folder / "sample-request.json"),
    )  # fmt: skip
    assert scored == [4.75, -0.75]

    url = f"{lapis_server.url}/api/v1/endpoints/{name}/score"
    body = (folder / "sample-request.json").read_bytes()
    keys = httpx.post(
        f"{lapis_server.url}/api/v1/endpoints/{name}/listKeys",
        headers={"Authorization": f"Bearer {lapis_server.token}"},
    ).json()
    assert "primaryKey" not in keys
    bearer = {"Authorization": f"Bearer {creds['accessToken']}"}
    with_token = httpx.post(url, content=body, headers=bearer)
    assert with_token.status_code == 200, with_token.text
    with_garbage = httpx.post(url, content=body, headers={"Authorization": "Bearer nope"})
    assert with_garbage.status_code == 401
    assert "unexpired token" in with_garbage.json()["message"]

    with MLClient(lapis_server.url, lapis_server.token) as ml:
        got = ml.online_endpoints.get_keys(name)
        assert isinstance(got, EndpointAuthToken) and got.access_token
        assert json.loads(ml.online_endpoints.invoke(name, request={"data": [[0, 0, 1]]})) == [2.25]
        # regenerating the primary key revokes the tokens signed with it
        ml.online_endpoints.begin_regenerate_keys(name, key_type="primary").result()
    revoked = httpx.post(url, content=body, headers=bearer)
    assert revoked.status_code == 401
    _json(lapis_server, "online-endpoint", "delete", "-n", name, "--yes")
