"""MLflow's limits on what is logged, and what happens past them."""

from __future__ import annotations

import pytest

from lapis.errors import InvalidParameterValue


def test_long_values_are_cut_unless_mlflow_says_not_to(monkeypatch: pytest.MonkeyPatch) -> None:
    from lapis.tracking.validation import validate_param, validate_tag

    assert validate_param("p", "x" * 6001) == ("p", "x" * 6000)
    assert validate_tag("t", "y" * 8001) == ("t", "y" * 8000)
    monkeypatch.setenv("MLFLOW_TRUNCATE_LONG_VALUES", "false")
    with pytest.raises(InvalidParameterValue, match="exceeded length limit of 6000"):
        validate_param("p", "x" * 6001)
