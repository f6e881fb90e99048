"""Azure ML's compute naming rules, each broken once, each named in the message."""

from __future__ import annotations

import pytest

from lapis.errors import InvalidParameterValue
from lapis.specs.names import validate_compute_name


@pytest.mark.parametrize("name", ["cpu-dev", "abc", "a" * 24, "gpu-a100-x", "Dev1-box", "a-1b"])
def test_valid_names(name: str) -> None:
    assert validate_compute_name(name) == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("ab", "3 to 24 characters long (it has 2)"),
        ("a" * 25, "(it has 25)"),
        ("cpu_dev", "found '_'"),
        ("cpu dev", "found ' '"),
        ("1cpu", "must start with a letter"),
        ("-cpu", "must start with a letter"),
        ("cpu-", "'-' at position 4"),
        ("cpu-1", "'-' at position 4"),
        ("cpu--", "'-' at position 4"),
    ],
)
def test_each_rule_is_named(name: str, fragment: str) -> None:
    with pytest.raises(InvalidParameterValue) as err:
        validate_compute_name(name)
    assert fragment in err.value.message and "Rules:" in err.value.message
