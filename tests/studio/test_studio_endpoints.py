"""The endpoints pages in a real browser: test-invoke, traffic, health, telemetry, escaping.

One endpoint per server (module) with the example's blue and green deployments,
made with the CLI as a user would; the page then scores through the real
scoring route and changes the real traffic split.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from jobkit import http_for, lapis_cli
from studiokit import Studio

pytestmark = pytest.mark.timeout(240)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "endpoints"
SAMPLE = (EXAMPLE / "sample-request.json").read_text()
ANSWERS = {"blue": [4.75, -1.5], "green": [5.2, -2.0]}  # model-1 and model-2 on the sample
EVIL = "<script>alert(1)</script>"


def ok(server: Any, *args: str) -> Any:
    proc = lapis_cli(server, *args, "-o", "json")
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return json.loads(proc.stdout) if proc.stdout.strip() else None


@pytest.fixture(scope="module")
def endpoint(lapis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An endpoint with blue (all traffic) and green, both Succeeded."""
    ep = f"st-{uuid.uuid4().hex[:8]}"
    folder = tmp_path_factory.mktemp("endpoints") / "endpoints"
    shutil.copytree(EXAMPLE, folder)
    for yml in folder.glob("*.yml"):
        yml.write_text(yml.read_text().replace("my-endpoint", ep))
    # blue's model carries an example request: the test form starts with it
    shutil.copy(EXAMPLE / "sample-request.json", folder / "model-1" / "sample-request.json")
    ok(lapis_server, "online-endpoint", "create", "-f", str(folder / "endpoint.yml"))
    ok(lapis_server, "online-deployment", "create", "-f", str(folder / "blue.yml"), "--all-traffic")
    ok(lapis_server, "online-deployment", "create", "-f", str(folder / "green.yml"))
    return ep


def send(studio: Studio, body: str, deployment: str = "") -> dict[str, str]:
    page = studio.page
    page.evaluate("document.getElementById('test-result').innerHTML = ''")
    page.fill("#test-body-input", body)
    page.select_option("#test-deployment-pick", deployment)
    page.click("#test-send")
    page.wait_for_selector("#test-status")
    answered = page.locator("#test-deployment")
    return {
        "status": page.inner_text("#test-status"),
        "body": page.inner_text("#test-body"),
        "deployment": answered.inner_text() if answered.count() else "",
        "request_id": page.inner_text("#test-request-id"),
    }


def test_test_invoke_from_the_page(studio: Studio, endpoint: str) -> None:
    studio.go(f"/endpoints/{endpoint}")
    page = studio.page
    assert page.get_attribute("#test-body-input", "placeholder").startswith('{"input_data"')
    assert json.loads(page.input_value("#test-body-input")) == json.loads(SAMPLE)  # prefilled
    assert page.input_value("#scoring-uri").endswith(f"/api/v1/endpoints/{endpoint}/score")

    by_split = send(studio, SAMPLE)
    assert by_split["status"] == "200", by_split
    assert by_split["deployment"] in ANSWERS, by_split
    assert json.loads(by_split["body"]) == ANSWERS[by_split["deployment"]]
    assert by_split["request_id"]
    studio.shot("endpoint-test-200")

    pinned = send(studio, SAMPLE, "green")
    assert (pinned["status"], pinned["deployment"]) == ("200", "green"), pinned
    assert json.loads(pinned["body"]) == [5.2, -2.0]
    pinned = send(studio, SAMPLE, "blue")
    assert json.loads(pinned["body"]) == [4.75, -1.5] and pinned["deployment"] == "blue"

    bad = send(studio, '{"data": [[1, 2')
    assert bad["status"] == "400", bad
    assert "not valid JSON" in bad["body"], bad
    studio.shot("endpoint-test-400")


def test_change_traffic(studio: Studio, endpoint: str) -> None:
    server = studio.server
    studio.go(f"/endpoints/{endpoint}")
    page = studio.page
    page.fill("#traffic-blue", "70")
    page.fill("#traffic-green", "30")
    assert page.inner_text("#traffic-total") == "100"
    page.click("#traffic-save")
    page.wait_for_selector("#traffic-form .flash.ok")
    assert "blue 70%, green 30%" in page.inner_text("#traffic-form .flash.ok")
    shown = ok(server, "online-endpoint", "show", endpoint)
    assert shown["traffic"] == {"blue": 70, "green": 30}
    studio.go(f"/endpoints/{endpoint}")
    assert (page.input_value("#traffic-blue"), page.input_value("#traffic-green")) == ("70", "30")
    studio.shot("endpoint-traffic-70-30")

    # A total of 90: the page says why and sends nothing ...
    page.fill("#traffic-blue", "60")
    assert "totals 90" in page.inner_text("#traffic-error")
    page.click("#traffic-save")
    assert page.get_attribute("#traffic-blue", "aria-invalid") == "false"
    assert "must total 100" in page.inner_text("#traffic-error")
    studio.shot("endpoint-traffic-refused-in-browser")
    # ... and the server refuses it too, with a message shown on the page.
    page.evaluate(
        """([url]) => htmx.ajax('POST', url, {source: '#messages', target: '#messages',
            values: {'traffic.blue': '60', 'traffic.green': '30'}})""",
        [f"/endpoints/{endpoint}/traffic"],
    )
    alert = page.wait_for_selector("#messages [role=alert]")
    assert "traffic must total 100 (or 0), got 90" in alert.inner_text()
    studio.shot("endpoint-traffic-refused-by-server")
    assert ok(server, "online-endpoint", "show", endpoint)["traffic"] == {"blue": 70, "green": 30}

    # Mirror traffic is saved from the same form.
    page.fill("#traffic-blue", "100")
    page.fill("#traffic-green", "0")
    page.fill("#mirror-green", "10")
    page.click("#traffic-save")
    page.wait_for_selector("#traffic-form .flash.ok")
    shown = ok(server, "online-endpoint", "show", endpoint)
    assert (shown["traffic"], shown["mirror_traffic"]) == ({"blue": 100, "green": 0}, {"green": 10})


def test_health_telemetry_and_logs(studio: Studio, endpoint: str) -> None:
    server = studio.server
    uri = ok(server, "online-endpoint", "show", endpoint)["scoring_uri"]
    key = ok(server, "online-endpoint", "get-credentials", endpoint)["primaryKey"]
    with httpx.Client(timeout=10) as http:
        for _ in range(20):
            r = http.post(uri, content=SAMPLE, headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200, r.text
    studio.go(f"/endpoints/{endpoint}")
    page = studio.page
    page.wait_for_selector("#chart-rps canvas")
    page.wait_for_selector("#chart-latency canvas")
    assert "requests" in page.inner_text("#telemetry-summary")
    rows = page.locator("#deployments-table > tbody > tr")
    assert rows.count() == 2
    blue = page.locator("#deployments-table tr[data-deployment=blue]")
    assert "Succeeded" in blue.inner_text() and "1/1 ready" in blue.inner_text()
    assert "Ready" in blue.locator("table.instances").inner_text()
    assert re.search(rf"{endpoint}-blue:\d+", blue.inner_text())
    page.click("text=Logs of blue")
    log = page.wait_for_selector("#deployment-log-text")
    assert "deployment.log" in log.inner_text() and "instance-0.log" in log.inner_text()
    studio.shot("endpoint-detail")


def test_list_and_user_text_is_text(studio: Studio, endpoint: str) -> None:
    with http_for(studio.server) as http:
        http.request("PATCH", f"/api/v1/endpoints/{endpoint}", json_body={"description": EVIL})
    batch = f"{endpoint}-batch"
    ok(studio.server, "batch-endpoint", "create", "--name", batch)
    dialogs: list[str] = []
    studio.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    listed = studio.go("/endpoints")
    assert EVIL not in listed.text()
    row = studio.page.locator("#online-endpoints tr", has_text=endpoint).first
    assert EVIL in row.inner_text() and "ready" in row.inner_text()
    assert f"/api/v1/endpoints/{endpoint}/score" in row.inner_text()
    batch_row = studio.page.locator("#batch-endpoints tr", has_text=batch)
    assert "none yet" in batch_row.inner_text()
    assert f"/api/v1/batchEndpoints/{batch}/invoke" in batch_row.inner_text()
    studio.shot("endpoints-list")
    detail = studio.go(f"/endpoints/{endpoint}")
    assert EVIL not in detail.text()
    assert studio.page.inner_text("#endpoint-description") == EVIL
    studio.page.set_viewport_size({"width": 390, "height": 844})
    studio.shot("endpoint-detail-phone")
    studio.page.wait_for_timeout(200)
    assert dialogs == []
    missing = studio.go("/endpoints/no-such-endpoint")
    assert missing.status == 404
    assert "does not exist" in studio.page.inner_text("[role=alert]")


def test_the_test_form_is_prefilled_from_an_mlflow_models_signature(
    studio: Studio, tmp_path: Path
) -> None:
    """An MLflow model with a signature and no example request: the form starts with a
    body built from the signature's columns, and that body scores."""
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"rooms": [1.0, 2.0, 3.0], "age": [10, 5, 1]})
    target = [100.0, 180.0, 260.0]
    model = LinearRegression().fit(frame, target)
    folder = tmp_path / "house-model"
    mlflow.sklearn.save_model(model, folder, signature=infer_signature(frame, target))
    uid = uuid.uuid4().hex[:6]
    name, ep = f"house-{uid}", f"sig-{uid}"
    ok(studio.server, "model", "create", "--name", name, "--path", str(folder),
       "--type", "mlflow_model")  # fmt: skip
    ok(studio.server, "online-endpoint", "create", "--name", ep)
    spec = tmp_path / "deployment.yml"
    spec.write_text(
        f"name: blue\nendpoint_name: {ep}\nmodel: azureml:{name}:1\n"
        "environment: system\ninstance_count: 1\n"
    )
    ok(studio.server, "online-deployment", "create", "-f", str(spec), "--all-traffic")
    studio.go(f"/endpoints/{ep}")
    body = json.loads(studio.page.input_value("#test-body-input"))
    assert body["input_data"]["columns"] == ["rooms", "age"]
    assert body["input_data"]["data"] == [[0.0, 0]]
    answered = send(studio, studio.page.input_value("#test-body-input"))
    assert answered["status"] == "200", answered
    assert len(json.loads(answered["body"])) == 1
