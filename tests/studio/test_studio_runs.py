"""Experiments, the runs table, a run's page with charts and artifacts, and compare, in Chromium."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
from studiokit import Studio, http_sign_in

EVIL = "<script>alert(1)</script>"


def make_runs(server: Any) -> dict[str, Any]:
    """Three runs with acc ending at 0.2 / 0.6 / 0.9 over 50 steps, plus one named EVIL."""
    uid = uuid.uuid4().hex[:8]
    exp = f"studio-runs-{uid}"
    runs: dict[str, str] = {}
    now = int(time.time() * 1000)
    with server.client() as http:
        for name, final, lr in (
            (f"low-{uid}", 0.2, "0.01"),
            (f"mid-{uid}", 0.6, "0.1"),
            (f"high-{uid}", 0.9, "0.1"),
            (EVIL, 0.1, "0.5"),
        ):
            made = http.post("/api/v1/runs", json={"experiment_name": exp, "run_name": name})
            made.raise_for_status()
            run_id = made.json()["run_id"]
            steps = list(range(50))
            values = [final * (s + 1) / 50 for s in steps]
            body = {
                "metrics": {
                    "key": ["acc"] * 50 + ["loss"] * 50,
                    "value": values + [1.0 - v for v in values],
                    "step": steps + steps,
                    "timestamp": [now + s * 1000 for s in steps] * 2,
                },
                "params": {"lr": lr, "optimizer": "adam"},
                "tags": {"mlflow.source.git.commit": "abc1234"},
            }
            http.post(f"/api/v1/runs/{run_id}/log", json=body).raise_for_status()
            http.post(f"/api/v1/runs/{run_id}/end", json={}).raise_for_status()
            runs[name] = run_id
        exp_id = http.get(f"/api/v1/experiments/{exp}").json()["experiment_id"]
        artifact = f"/api/2.0/mlflow-artifacts/artifacts/{exp_id}/{runs[f'high-{uid}']}"
        put = http.put(f"{artifact}/artifacts/reports/summary.txt", content=b"best run\n")
        put.raise_for_status()
    return {"uid": uid, "exp": exp, "exp_id": exp_id, "runs": runs}


def watch(studio: Studio) -> list[str]:
    """Problems seen by the page: a dialog (an injected script ran) or a script error."""
    problems: list[str] = []
    studio.page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    studio.page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    return problems


def run_names(studio: Studio) -> list[str]:
    return studio.page.locator("#runs-view tbody .run-name").all_inner_texts()


def test_runs_table_filter_sort_and_compare(studio: Studio) -> None:
    data = make_runs(studio.server)
    uid, page = data["uid"], studio.page
    problems = watch(studio)
    studio.go("/experiments")
    studio.shot("experiments")
    page.click(f"text={data['exp']}")
    page.wait_for_selector("#runs-view tbody tr")
    assert sorted(run_names(studio)) == sorted([EVIL, f"low-{uid}", f"mid-{uid}", f"high-{uid}"])
    assert "acc" in page.inner_text("#runs-view thead") and "lr" in page.inner_text("thead")
    studio.shot("runs")

    page.fill("#runs-filter", "metrics.acc > 0.5")
    page.press("#runs-filter", "Enter")
    page.wait_for_function("document.querySelectorAll('#runs-view tbody tr').length === 2")
    assert sorted(run_names(studio)) == [f"high-{uid}", f"mid-{uid}"]
    assert "filter=metrics.acc" in page.url  # the view is a link
    studio.shot("runs-filtered")

    page.fill("#runs-filter", "metrics.acc >> 0.5")
    page.press("#runs-filter", "Enter")
    page.wait_for_selector("#filter-error:not(:empty)")
    assert "unexpected token '>'" in page.inner_text("#filter-error")
    assert page.locator("#runs-view tbody tr").count() == 0
    studio.shot("runs-bad-filter")

    studio.go(f"/experiments/{data['exp_id']}")
    page.click("#runs-view thead a[title='metrics.acc']")
    page.wait_for_url("**order_by=metrics.acc*")
    page.wait_for_selector("#runs-view th[aria-sort='descending']")
    assert run_names(studio) == [f"high-{uid}", f"mid-{uid}", f"low-{uid}", EVIL]
    page.click("#runs-view thead a[title='metrics.acc']")
    page.wait_for_selector("#runs-view th[aria-sort='ascending']")
    assert run_names(studio) == [EVIL, f"low-{uid}", f"mid-{uid}", f"high-{uid}"]
    studio.shot("runs-sorted")

    page.check(f"input[name=runs][value='{data['runs'][f'low-{uid}']}']")
    page.check(f"input[name=runs][value='{data['runs'][f'high-{uid}']}']")
    page.click("#compare-button")
    page.wait_for_url("**/compare?**")
    lr_row = page.locator("#diff-table tbody tr", has_text="lr")
    assert "differs" in (lr_row.get_attribute("class") or "")
    assert "0.01" in lr_row.inner_text() and "0.1" in lr_row.inner_text()
    same = page.locator("#diff-table tbody tr", has_text="optimizer")
    assert same.is_visible()
    page.check("#only-diff")
    assert not same.is_visible() and lr_row.is_visible()
    page.wait_for_selector("#compare-charts canvas")
    legend = page.locator("#compare-charts .chart-box[data-key='acc'] .u-legend").inner_text()
    assert f"low-{uid}" in legend and f"high-{uid}" in legend
    studio.shot("compare")
    assert problems == []


def test_run_page_charts_params_artifacts_and_escaping(studio: Studio) -> None:
    data = make_runs(studio.server)
    uid, page = data["uid"], studio.page
    problems = watch(studio)
    high = data["runs"][f"high-{uid}"]
    studio.go(f"/runs/{high}")
    page.wait_for_selector("#run-charts .chart-box[data-key='acc'] canvas")
    assert page.locator("#run-charts canvas").count() >= 2  # acc and loss
    params = page.inner_text(".params-table")
    assert "lr" in params and "0.1" in params and "adam" in params
    assert "abc1234" in page.inner_text("main")  # the git commit tag
    assert data["exp"] in page.inner_text(".crumbs")
    page.check("#chart-log")
    page.select_option("#chart-x", "time")
    page.wait_for_selector("#run-charts canvas")
    page.fill("#chart-smooth", "0.6")
    page.click("#chart-reset")
    page.wait_for_selector("#run-charts .chart-box[data-key='loss'] canvas")
    studio.shot("run")

    page.click("#artifacts a:has-text('reports/')")
    page.wait_for_selector("#artifacts a:has-text('Download')")
    href = page.get_attribute("#artifacts a:has-text('Download')", "href")
    assert href is not None
    got = page.request.get(studio.url(href))
    assert got.status == 200 and got.body() == b"best run\n"
    assert got.headers["content-disposition"].endswith("summary.txt")
    studio.shot("run-artifacts")

    series = page.request.get(studio.url(f"/ui/runs/{high}/metric-series?keys=acc&points=10"))
    body = series.json()["series"]["acc"]
    assert len(body["x"]) <= 10 and body["total"] == 50 and max(body["y"]) == 0.9
    bad = page.request.get(studio.url(f"/ui/runs/{high}/metric-series?keys=acc&x=nope"))
    assert bad.status == 400 and "x must be" in bad.json()["error"]

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    studio.go(f"/runs/{high}")
    page.wait_for_selector("#run-charts canvas")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    studio.shot("run-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    studio.go(f"/runs/{data['runs'][EVIL]}")
    assert EVIL in page.inner_text("h1")
    studio.go(f"/experiments/{data['exp_id']}")
    assert EVIL in run_names(studio)
    studio.shot("escaped")
    assert problems == []


def test_compare_needs_two_to_ten_runs(lapis_server: Any) -> None:
    with httpx.Client(base_url=lapis_server.url) as http:
        http_sign_in(http, lapis_server.token)
        answer = http.get("/compare?runs=abc")
        assert answer.status_code == 400 and "between 2 and 10" in answer.text
        missing = http.get("/runs/0123456789abcdef0123456789abcdef")
        assert missing.status_code == 404 and "not found" in missing.text


def test_zooming_a_downsampled_chart_fetches_its_window(studio: Studio) -> None:
    """5,000 points arrive as at most 1,000; a drag-zoom asks for the window at full detail."""
    page = studio.page
    problems = watch(studio)
    with studio.server.client() as http:
        made = http.post(
            "/api/v1/runs", json={"experiment_name": f"zoom-{uuid.uuid4().hex[:8]}"}
        ).json()
        steps = list(range(5000))
        body = {
            "metrics": {
                "key": ["loss"] * 5000,
                "value": [1.0 + (s % 7) / 10 for s in steps],
                "step": steps,
                "timestamp": [1_700_000_000_000 + s for s in steps],
            }
        }
        http.post(f"/api/v1/runs/{made['run_id']}/log", json=body).raise_for_status()
    studio.go(f"/runs/{made['run_id']}")
    page.wait_for_selector("#run-charts canvas")
    over = page.locator("#run-charts .u-over").first.bounding_box()
    assert over is not None
    y = over["y"] + over["height"] / 2
    with page.expect_response(lambda r: "/metric-series" in r.url and "lo=" in r.url) as got:
        page.mouse.move(over["x"] + over["width"] * 0.2, y)
        page.mouse.down()
        page.mouse.move(over["x"] + over["width"] * 0.3, y, steps=5)
        page.mouse.up()
    window = got.value.json()["series"]["loss"]
    assert window["x"] == list(range(window["x"][0], window["x"][-1] + 1))  # every point
    assert 300 < len(window["x"]) < 1000
    page.wait_for_selector("#run-charts canvas")
    studio.shot("run-zoomed")
    page.click("#chart-reset")
    page.wait_for_selector("#run-charts canvas")
    assert problems == []


def test_a_running_runs_page_updates_live_and_mlflow_links_open_it(studio: Studio) -> None:
    """Metrics logged after the page opened appear (values and charts) without a reload;
    the page stops polling once the run ends; ``/#/experiments/<id>/runs/<run>`` (what
    the mlflow client prints) lands on the run's page."""
    page, problems = studio.page, watch(studio)
    with studio.server.client() as http:
        made = http.post("/api/v1/runs", json={"experiment_name": f"live-{uuid.uuid4().hex[:6]}"})
        run_id, exp_id = made.json()["run_id"], made.json()["experiment_id"]
        studio.go(f"/#/experiments/{exp_id}/runs/{run_id}")  # the client's printed link
        page.wait_for_url(f"**/runs/{run_id}")
        assert "RUNNING" in page.inner_text("#run-live h1")
        assert page.locator("#run-charts canvas").count() == 0
        now = int(time.time() * 1000)
        body = {"metrics": {"key": ["loss"] * 3, "value": [0.9, 0.5, 0.25],
                            "step": [0, 1, 2], "timestamp": [now] * 3},
                "params": {"lr": "0.3"}}  # fmt: skip
        http.post(f"/api/v1/runs/{run_id}/log", json=body).raise_for_status()
        page.wait_for_selector("#run-charts .chart-box[data-key='loss'] canvas", timeout=15000)
        page.wait_for_function(
            "document.querySelector('#run-latest').innerText.includes('0.25')", timeout=15000
        )
        assert "0.3" in page.inner_text(".params-table")
        http.post(f"/api/v1/runs/{run_id}/end", json={}).raise_for_status()
        page.wait_for_function(
            "document.querySelector('#run-live h1').innerText.includes('FINISHED')", timeout=15000
        )
    assert page.get_attribute("#run-live", "hx-get") is None  # polling has stopped
    studio.go(f"/#/experiments/{exp_id}")
    page.wait_for_url(f"**/experiments/{exp_id}")
    assert problems == []


def test_a_runs_traces_show_as_a_span_tree(
    studio: Studio, point_mlflow: Any, monkeypatch: Any
) -> None:
    """Traces logged inside a run are listed on its page; a trace's page draws its spans
    as a tree whose rows open to their inputs and outputs (user text stays text)."""
    import mlflow

    point_mlflow(studio.server)
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    page, problems = studio.page, watch(studio)

    @mlflow.trace(name="answer", span_type="CHAIN")
    def answer(question: str) -> str:
        with mlflow.start_span(name="retrieve") as span:
            span.set_inputs({"query": question})
            span.set_outputs({"docs": ["doc-1", EVIL]})
        return "forty-two"

    exp_id = mlflow.set_experiment(f"studio-traces-{uuid.uuid4().hex[:6]}").experiment_id
    with mlflow.start_run() as run:
        answer("what is six times seven?")
    studio.go(f"/runs/{run.info.run_id}")
    assert "answer" in page.inner_text("#traces")
    page.click("#traces a")
    page.wait_for_selector("#span-tree")
    rows = page.locator("#span-tree .span")
    assert rows.count() == 2
    assert rows.nth(0).get_attribute("data-depth") == "0"
    assert rows.nth(1).get_attribute("data-depth") == "1"
    assert "forty-two" in page.inner_text("#span-tree .span >> nth=0")  # the root is open
    page.click("#span-tree .span >> nth=1 >> summary")
    outputs = page.inner_text("#span-tree .span >> nth=1 >> .span-outputs")
    assert EVIL in outputs and "doc-1" in outputs
    studio.shot("trace")
    studio.go(f"/experiments/{exp_id}")
    page.click("#traces-link")
    page.wait_for_selector(".traces-table")
    assert page.locator(".traces-table tbody tr").count() == 1
    assert problems == []
