"""The ``lapis`` console script, run as a subprocess against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Protocol

import pytest

from lapis.sdk.connection import LapisHTTP

LAPIS = str(Path(sys.executable).parent / "lapis")


class Server(Protocol):
    """What the shared ``lapis_server`` fixture (tests/conftest.py) gives: a running server."""

    url: str
    token: str
    home: Path
    env: dict[str, str]


# --- helpers --------------------------------------------------------------------------
def cli(
    *args: str, env: dict[str, str] | None = None, home_only: Server | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``lapis ARGS``; ``env`` adds variables, LAPIS_* from the caller's shell are dropped."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LAPIS_", "MLFLOW_"))}
    base["COLUMNS"] = "200"
    return subprocess.run(
        [LAPIS, *args], env={**base, **(env or {})}, capture_output=True, text=True, timeout=60
    )


def ok_json(*args: str, env: dict[str, str]) -> Any:
    proc = cli(*args, "-o", "json", env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error:")
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture(scope="module")
def data(lapis_server: Server) -> dict[str, Any]:
    """Two experiments, three runs with params, metrics (one with a history) and tags."""
    with LapisHTTP(lapis_server.url, lapis_server.token) as api:
        runs = []
        for exp, name, lr, acc in (
            ("cli-a", "alpha", "0.1", 0.80),
            ("cli-a", "beta", "0.01", 0.95),
            ("cli-b", "gamma", "0.1", 0.70),
        ):
            run = api.post("/api/v1/runs", {"experiment_name": exp, "run_name": name})
            n = 50
            api.post(
                f"/api/v1/runs/{run['run_id']}/log",
                {
                    "metrics": {
                        "key": ["loss"] * n + ["acc"],
                        "value": [1.0 / (i + 1) for i in range(n)] + [acc],
                        "step": [*range(n), 0],
                        "timestamp": [1_700_000_000_000 + i for i in range(n + 1)],
                    },
                    "params": {"lr": lr},
                    "tags": {"team": "cli"},
                },
            )
            api.post(f"/api/v1/runs/{run['run_id']}/end", {"status": "FINISHED"})
            runs.append(run)
    return {"runs": runs}


# --- tests ------------------------------------------------------------------------------
def test_experiment_list(lapis_server: Server, data: dict[str, Any]) -> None:
    exps = ok_json("experiment", "list", env=lapis_server.env)
    names = {e["name"] for e in exps}
    assert {"cli-a", "cli-b", "Default"} <= names
    table = cli("experiment", "list", env=lapis_server.env)
    assert table.returncode == 0 and "cli-a" in table.stdout
    all_view = cli("--output", "json", "experiment", "list", "--view", "all", env=lapis_server.env)
    assert {e["name"] for e in json.loads(all_view.stdout)} >= names


def test_run_list_with_experiment_filter_and_order(lapis_server: Server, data: dict) -> None:
    env = lapis_server.env
    runs = ok_json("run", "list", "--experiment", "cli-a", env=env)
    assert {r["run_name"] for r in runs} == {"alpha", "beta"}
    filtered = ok_json("run", "list", "--filter", "params.lr = '0.1'", env=env)
    assert {"alpha", "gamma"} <= {r["run_name"] for r in filtered}
    assert "beta" not in {r["run_name"] for r in filtered}
    ordered = ok_json(
        "run", "list", "-e", "cli-a", "--order-by", "metrics.acc DESC", "-n", "1", env=env
    )
    assert [r["run_name"] for r in ordered] == ["beta"]
    table = cli("run", "list", "-e", "cli-a", env=env)
    assert table.returncode == 0
    assert "alpha" in table.stdout and "FINISHED" in table.stdout and "cli-a" in table.stdout


def test_run_show(lapis_server: Server, data: dict[str, Any]) -> None:
    run_id = data["runs"][0]["run_id"]
    shown = ok_json("run", "show", run_id, env=lapis_server.env)
    assert shown["run_id"] == run_id and shown["params"] == {"lr": "0.1"}
    assert shown["metrics"]["loss"]["step"] == 49
    table = cli("run", "show", run_id, env=lapis_server.env)
    assert table.returncode == 0
    for text in (run_id, "alpha", "cli-a", "lr", "loss", "team"):
        assert text in table.stdout


def test_run_metrics_summarises_history(lapis_server: Server, data: dict[str, Any]) -> None:
    run_id = data["runs"][0]["run_id"]
    rows = {r["key"]: r for r in ok_json("run", "metrics", run_id, env=lapis_server.env)}
    assert rows["loss"]["count"] == 50 and rows["loss"]["step"] == 49
    assert rows["loss"]["min"] == pytest.approx(1 / 50) and rows["loss"]["max"] == 1.0
    assert rows["acc"]["count"] == 1
    latest = ok_json("run", "metrics", run_id, "--latest-only", "-k", "loss", env=lapis_server.env)
    assert [r["key"] for r in latest] == ["loss"] and "count" not in latest[0]
    table = cli("run", "metrics", run_id, env=lapis_server.env)
    assert table.returncode == 0 and "loss" in table.stdout and "50" in table.stdout


def test_auth_token_and_whoami(lapis_server: Server) -> None:
    proc = cli("auth", "token", "--home", str(lapis_server.home))
    assert proc.returncode == 0 and proc.stdout.strip() == lapis_server.token
    via_env = cli("auth", "token", env={"LAPIS_HOME": str(lapis_server.home)})
    assert via_env.stdout.strip() == lapis_server.token
    me = ok_json("auth", "whoami", env={"LAPIS_HOME": str(lapis_server.home)})
    assert me["name"] == "admin" and me["url"] == lapis_server.url
    whoami = cli("--home", str(lapis_server.home), "auth", "whoami")
    assert whoami.returncode == 0 and "admin" in whoami.stdout


def test_unknown_run_is_one_line_and_exit_1(lapis_server: Server) -> None:
    for args in (
        ("run", "show", "0" * 32),
        ("run", "metrics", "nope"),
        ("-o", "json", "run", "show", "x"),
    ):
        assert_one_line_error(cli(*args, env=lapis_server.env), "not found")
    assert_one_line_error(
        cli("run", "list", "--experiment", "no-such-experiment", env=lapis_server.env),
        "no-such-experiment",
    )
    assert_one_line_error(cli("run", "list", "--filter", "metrics.acc >>> 1", env=lapis_server.env))


def test_missing_server_or_bad_token(lapis_server: Server, tmp_path: Path) -> None:
    assert_one_line_error(cli("run", "list", env={"LAPIS_HOME": str(tmp_path)}), "lapis server")
    assert_one_line_error(cli("auth", "token", "--home", str(tmp_path)), "credentials")
    dead = {"LAPIS_URL": "http://127.0.0.1:9", "LAPIS_TOKEN": "x"}
    assert_one_line_error(cli("experiment", "list", env=dead), "cannot reach")
    wrong = {"LAPIS_URL": lapis_server.url, "LAPIS_TOKEN": "lapis_wrong"}
    assert_one_line_error(cli("experiment", "list", env=wrong))


def test_usage_errors_exit_2(lapis_server: Server) -> None:
    for args in (("run", "list", "--bogus"), ("run", "show"), ("-o", "xml", "run", "list")):
        proc = cli(*args, env=lapis_server.env)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert cli("--version").stdout.startswith("lapis ")
    assert cli("--help").returncode == 0
