"""An azure-ai-ml script in the shape of Azure's SDK samples runs against Lapis with only
its imports changed (``azure.ai.ml`` → ``lapis.ml``) and its client built from a
``config.json`` that ``lapis auth config-file`` wrote (``MLClient.from_config``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from jobkit import lapis_cli

FILES = Path(__file__).parent / "files" / "sdk"


def test_an_azure_style_sdk_script_runs_end_to_end(lapis_server: Any, tmp_path: Path) -> None:
    work = tmp_path / "sample"
    shutil.copytree(FILES, work)
    wrote = lapis_cli(lapis_server, "auth", "config-file", "--path", str(tmp_path))
    assert wrote.returncode == 0, wrote.stderr
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["url"] == lapis_server.url and "token" not in config
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAPIS_")}
    env["LAPIS_TOKEN"] = lapis_server.token  # the token comes from the environment
    env["LAPIS_HOME"] = str(tmp_path / "not-a-workspace")
    done = subprocess.run(
        [sys.executable, "azure_style.py"],
        cwd=work,  # from_config finds ../config.json, as Azure's searches upwards
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["compute_state"] == "Running"
    assert summary["job_status"] == "Completed"
    assert summary["studio_url"].startswith(f"{lapis_server.url}/jobs/")
    assert summary["model_id"].startswith("azureml:tiny-") and summary["model_id"].endswith(":1")
    assert summary["deployment_state"] == "Succeeded"
    assert summary["traffic"] == {"blue": 100}
    assert summary["scoring_uri"].endswith("/score")
    assert summary["key_length"] > 20
    # weights are 0.5 x the column means (2, 3): [1.0, 1.5], bias 0.5
    assert summary["prediction"] == [3.0, 3.5]
    assert summary["instances"] == 2
    assert summary["batch_default"] == "scorer"
    assert summary["batch_rows"] == ["r1.csv,3.0", "r2.csv,2.5"]
    assert not any(name.startswith("ep-") for name in summary["endpoints_left"])


def test_from_config_explains_an_azure_config(tmp_path: Path) -> None:
    """An Azure workspace config.json (no Lapis URL) gets one line saying what to add."""
    (tmp_path / ".azureml").mkdir()
    (tmp_path / ".azureml" / "config.json").write_text(
        json.dumps({"subscription_id": "x", "resource_group": "rg", "workspace_name": "ws"})
    )
    code = "from lapis.ml import MLClient; MLClient.from_config(path='.')"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "an Azure ML workspace config ('ws')" in done.stderr
    assert 'add "url": "http://HOST:PORT"' in done.stderr
