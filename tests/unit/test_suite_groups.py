"""The suite's own scheduling: tests marked ``xdist_group`` share one worker under
``make test`` (``-n 2 --dist loadgroup``). The Ray cluster modules rely on it: two of their
clusters at once on a 2-core runner starve a head's job API. A pytest that keeps node ids
where pytest-xdist cannot add the group (9.2 with xdist 3.8) splits groups silently; this
says so instead."""

from __future__ import annotations

import os

import pytest


@pytest.mark.xdist_group("suite-probe")
def test_a_grouped_test_carries_its_group(request: pytest.FixtureRequest) -> None:
    if not getattr(request.config.option, "loadgroup", False):  # set on xdist workers
        pytest.skip("SKIPPED LOUDLY: only meaningful under -n N --dist loadgroup (make test)")
    assert os.environ.get("PYTEST_XDIST_WORKER"), "loadgroup without workers"
    assert request.node.nodeid.endswith("@suite-probe"), (
        f"{request.node.nodeid}: pytest-xdist did not add the group; tests marked "
        "xdist_group would be spread over workers (pin a pytest it supports)"
    )
