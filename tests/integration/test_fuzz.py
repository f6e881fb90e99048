"""Fuzzing the whole API from its own OpenAPI document, as an Owner and as a Reader.

schemathesis generates requests for every operation /openapi.json describes —
valid ones and broken ones — and checks each answer: never a 5xx, a documented
status code and content type, and a body that matches the documented schema
(MLflow's routes carry request and response schemas generated from MLflow's
protocol files; every error is the one documented Error object). Routes that
would end the fuzzing token itself (rotate, revoke, sign-out) are left out. A
fixed seed keeps CI deterministic; set LAPIS_FUZZ_SEED to explore.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.stores("sqlite", "postgres")

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
EXAMPLES = int(os.environ.get("LAPIS_FUZZ_EXAMPLES", "5"))


def _schemathesis() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("LOUD SKIP: schemathesis is not installed (pip install 'lapis[dev]')")
    return found


@pytest.mark.parametrize("role", ["Owner", "Reader"])
def test_fuzz_the_api(lapis_server: Any, role: str, tmp_path: Path) -> None:
    exe = _schemathesis()
    token = lapis_server.token
    if role != "Owner":
        with lapis_server.client() as admin:
            name = f"fuzz-{role.lower()}-{os.getpid()}"
            admin.post("/api/v1/users", json={"name": name, "roles": [role]})
            token = admin.post("/api/v1/tokens", json={"name": "fuzz", "user": name}).json()[
                "token"
            ]
    report = tmp_path / "junit.xml"
    done = subprocess.run(
        [
            exe,
            "run",
            f"{lapis_server.url}/openapi.json",
            "-H",
            f"Authorization: Bearer {token}",
            "--checks",
            CHECKS,
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            os.environ.get("LAPIS_FUZZ_SEED", "20261206"),
            "--exclude-path-regex",
            "/tokens/rotate|/revoke$|/signout",
            "--request-timeout",
            "60",  # the default 10 s is short on a 2-core CI host running Ray clusters beside
            "--workers",
            "1",  # two workers race in hypothesis' lambda-source cache (a Runtime Error)
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = done.stdout + done.stderr
    generated = re.search(r"(\d+) generated", out)
    assert generated, out[-3000:]
    assert int(generated.group(1)) >= 1000, out[-3000:]  # ~2,000+ per role and store
    assert done.returncode == 0, _problems(out)
    assert "Server error" not in out
    with lapis_server.client() as c:
        assert c.get("/healthz").status_code == 200


def _problems(out: str) -> str:
    """The run's ERRORS and FAILURES sections first (its warnings come after them and would
    push them out of a tail), then the tail."""
    found = re.findall(r"=+ (?:ERRORS|FAILURES) =+\n.*?(?=\n=+ [A-Z]+ =+\n|\Z)", out, re.S)
    return "\n".join(part[:4000] for part in found) + "\n...\n" + out[-2000:]
