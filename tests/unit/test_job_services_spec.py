"""A command job's ``services:`` as Azure's interactive jobs write them; mistakes one line."""

from __future__ import annotations

import pytest

from lapis.errors import InvalidParameterValue
from lapis.specs.job import parse_job

KEY = "ssh-ed25519 " + "B" * 68 + " me"


def test_services_are_read() -> None:
    spec = parse_job(
        "command: sleep 1\nservices:\n  lab: {type: jupyter_lab}\n"
        "  board: {type: tensor_board, log_dir: outputs/tb}\n"
        f"  shell: {{type: ssh, ssh_public_keys: '{KEY}', nodes: all}}\n"
        "  code: {type: vs_code}\n",
        "j.yml",
    )
    assert spec.services == {
        "lab": {"type": "jupyter_lab"},
        "board": {"type": "tensor_board", "log_dir": "outputs/tb"},
        "shell": {"type": "ssh", "ssh_public_keys": KEY},
        "code": {"type": "vs_code"},
    }


@pytest.mark.parametrize(
    ("services", "said"),
    [
        ("  lab: {type: jupyterlab}\n", "j.yml:3: 'services.lab.type' must be one of"),
        ("  lab: {type: ssh}\n", "needs OpenSSH public key lines"),
        ("  b: {type: tensor_board, log_dir: ../x}\n", "inside the job's working folder"),
        ("  9lab: {type: jupyter_lab}\n", "a service name holds letters"),
        ("  lab: {type: jupyter_lab, prt: 1}\n", "is not a service setting"),
    ],
)
def test_service_mistakes(services: str, said: str) -> None:
    with pytest.raises(InvalidParameterValue) as err:
        parse_job("command: sleep 1\nservices:\n" + services, "j.yml")
    assert said in err.value.message, err.value.message
