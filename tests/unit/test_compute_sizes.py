"""VM size catalogue and per-family core quotas."""

from __future__ import annotations

import pytest

from lapis.entities.sizes import check_quota, cores_in_use, fits_host, get_size
from lapis.errors import InvalidParameterValue, ResourceDoesNotExist


def test_sizes_are_found_case_insensitively_with_a_hint_for_typos() -> None:
    assert get_size("standard_ds2_v2").cores == 2
    with pytest.raises(ResourceDoesNotExist, match="Did you mean Standard_DS2_v2"):
        get_size("Standard_DS2_v9")


def test_fits_host() -> None:
    assert fits_host(get_size("Standard_DS1_v2"), 2, 24)
    assert not fits_host(get_size("Standard_DS3_v2"), 2, 24)
    assert not fits_host(get_size("Standard_NC4as_T4_v3"), 8, 64, host_gpus=0)


def test_quota_counts_every_allocation_of_the_family() -> None:
    used = cores_in_use([("Standard_DS2_v2", 1), ("Standard_DS3_v2", 1), ("Standard_F2s_v2", 4)])
    assert used == {"standardDSv2Family": 6, "standardFSv2Family": 8}
    check_quota(get_size("Standard_DS2_v2"), 1, used, {"standardDSv2Family": 8})
    with pytest.raises(InvalidParameterValue) as err:
        check_quota(get_size("Standard_DS3_v2"), 1, used, {"standardDSv2Family": 8})
    message = err.value.message
    assert "needs 4 cores" in message and "6 of 8 are in use (2 left)" in message
    check_quota(get_size("Standard_F4s_v2"), 4, used)  # default quota 24: 8 + 16
    with pytest.raises(InvalidParameterValue, match="standardFSv2Family"):
        check_quota(get_size("Standard_F4s_v2"), 5, used)
