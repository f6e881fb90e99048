"""VM sizes and per-family core quotas, as Azure users know them.

A size is a named slice of a machine: cores, memory, GPUs, a family and a
category. Lapis maps it onto this host (an instance of Standard_DS2_v2 is two
cores and 7 GiB of it); ``fits_host`` says whether this host can give that
slice at all. Quotas are per family and count every instance — running or
stopped, since a stopped instance keeps its allocation — and a cluster's
maximum nodes, exactly as Azure counts them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lapis.errors import InvalidParameterValue, ResourceDoesNotExist


@dataclass(frozen=True)
class VmSize:
    name: str
    cores: int
    memory_gib: float
    family: str
    category: str  # "General purpose", "Memory optimized", "Compute optimized", "GPU"
    gpus: int = 0
    gpu_type: str | None = None
    approval_required: bool = False


CATALOGUE: tuple[VmSize, ...] = (
    VmSize("Standard_DS1_v2", 1, 3.5, "standardDSv2Family", "General purpose"),
    VmSize("Standard_DS2_v2", 2, 7, "standardDSv2Family", "General purpose"),
    VmSize("Standard_DS3_v2", 4, 14, "standardDSv2Family", "General purpose"),
    VmSize("Standard_D2s_v3", 2, 8, "standardDSv3Family", "General purpose"),
    VmSize("Standard_D4s_v3", 4, 16, "standardDSv3Family", "General purpose"),
    VmSize("Standard_F2s_v2", 2, 4, "standardFSv2Family", "Compute optimized"),
    VmSize("Standard_F4s_v2", 4, 8, "standardFSv2Family", "Compute optimized"),
    VmSize("Standard_E4s_v3", 4, 32, "standardESv3Family", "Memory optimized"),
    VmSize("Standard_NC4as_T4_v3", 4, 28, "standardNCASv3_T4Family", "GPU", 1, "T4"),
    VmSize(
        "Standard_NC6s_v3", 6, 112, "standardNCSv3Family", "GPU", 1, "V100", approval_required=True
    ),
)
BY_NAME = {s.name.lower(): s for s in CATALOGUE}
DEFAULT_FAMILY_QUOTA = 24


def get_size(name: str) -> VmSize:
    size = BY_NAME.get(name.lower())
    if size is None:
        import difflib

        close = difflib.get_close_matches(name, [s.name for s in CATALOGUE], n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise ResourceDoesNotExist(
            f"Unknown VM size '{name}'.{hint} `lapis compute list-sizes` shows the catalogue."
        )
    return size


def fits_host(size: VmSize, host_cores: int, host_memory_gib: float, host_gpus: int = 0) -> bool:
    return (
        size.cores <= host_cores and size.memory_gib <= host_memory_gib and size.gpus <= host_gpus
    )


def cores_in_use(allocations: Iterable[tuple[str, int]]) -> dict[str, int]:
    """(size name, node count) per instance or cluster → cores held per family."""
    used: dict[str, int] = {}
    for size_name, nodes in allocations:
        size = get_size(size_name)
        used[size.family] = used.get(size.family, 0) + size.cores * nodes
    return used


def check_quota(
    size: VmSize,
    nodes: int,
    used: Mapping[str, int],
    quotas: Mapping[str, int] | None = None,
) -> None:
    """Refuse an allocation past its family's quota, with the numbers that decide it."""
    limit = (quotas or {}).get(size.family, DEFAULT_FAMILY_QUOTA)
    have = used.get(size.family, 0)
    want = size.cores * nodes
    if have + want > limit:
        raise InvalidParameterValue(
            f"Quota exceeded for {size.family}: {nodes} x {size.name} needs {want} cores, "
            f"{have} of {limit} are in use ({limit - have} left). Stop is not enough: delete an "
            "instance, lower a cluster's max nodes, or raise the quota."
        )
