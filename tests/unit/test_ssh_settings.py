"""A compute instance's SSH settings as Azure writes them: ssh_public_access_enabled with
ssh_settings.ssh_key_value, an OpenSSH public key line; each mistake one line at its key."""

from __future__ import annotations

import pytest

from lapis.errors import InvalidParameterValue
from lapis.specs.compute import parse_compute
from lapis.specs.yaml_lines import load

KEY = "ssh-ed25519 " + "A" * 68 + " me@laptop"


def _parse(text: str) -> object:
    return parse_compute(load("name: box\ntype: computeinstance\n" + text, "ci.yml"))


def test_a_public_key_turns_ssh_on() -> None:
    spec = _parse(f"ssh_public_access_enabled: true\nssh_settings:\n  ssh_key_value: {KEY}\n")
    assert spec.ssh_enabled and spec.ssh_key == KEY  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "where", "said"),
    [
        ("ssh_public_access_enabled: true\n", "ci.yml:3", "SSH needs a public key"),
        ("ssh_public_access_enabled: true\nssh_settings:\n  ssh_key_value: -----BEGIN OPENSSH"
         " PRIVATE KEY-----\n", "ci.yml:5", "not the private key"),
        (f"ssh_settings:\n  ssh_key_value: {KEY}\n", "ci.yml:3",
         "needs ssh_public_access_enabled: true"),
        ("ssh_public_access_enabled: true\nssh_settings:\n  key: x\n", "ci.yml:5",
         "is not an ssh_settings key"),
    ],
)  # fmt: skip
def test_ssh_mistakes_are_one_line(text: str, where: str, said: str) -> None:
    with pytest.raises(InvalidParameterValue) as err:
        _parse(text)
    assert err.value.message.startswith(where) and said in err.value.message, err.value.message
