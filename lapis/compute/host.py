"""What this host can give compute instances: cores, memory and GPUs.

An instance is a slice of this machine, so every size check asks the same
question: does the host have that many cores, that much memory, those GPUs?
The answer is read once per process (``detect_host``) and can be replaced by a
hand-made ``HostInfo`` — tests use a small one to check the refusals.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from lapis.entities.sizes import VmSize, fits_host
from lapis.errors import InvalidParameterValue


@dataclass(frozen=True)
class HostInfo:
    cores: int
    memory_gib: float
    gpus: int = 0
    cpu_ids: tuple[int, ...] = ()  # the cores this process may run on; range(cores) when empty

    @property
    def cpus(self) -> tuple[int, ...]:
        return self.cpu_ids or tuple(range(self.cores))

    def describe(self) -> str:
        gpus = f" and {self.gpus} GPU{'s' if self.gpus != 1 else ''}" if self.gpus else ""
        return f"{self.cores} cores and {self.memory_gib:.1f} GiB{gpus}"


def _gpu_count() -> int:
    """NVIDIA GPUs the driver reports, narrowed by CUDA_VISIBLE_DEVICES when that is set."""
    try:
        found = len(list(Path("/proc/driver/nvidia/gpus").iterdir()))
    except OSError:
        found = 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and found:
        found = min(found, len([v for v in visible.split(",") if v.strip()]))
    return found


@functools.lru_cache(maxsize=1)
def detect_host() -> HostInfo:
    """This host, as the process sees it (its CPU affinity, not the machine's core count)."""
    if hasattr(os, "sched_getaffinity"):
        ids = tuple(sorted(os.sched_getaffinity(0)))
    else:  # macOS, Windows
        ids = tuple(range(os.cpu_count() or 1))
    memory = psutil.virtual_memory().total / 1024**3
    return HostInfo(cores=len(ids), memory_gib=round(memory, 1), gpus=_gpu_count(), cpu_ids=ids)


def check_fits(size: VmSize, host: HostInfo, defaulted: bool = False) -> None:
    """Refuse a size this host cannot give, or one that needs approval, saying why."""
    if size.approval_required:
        raise InvalidParameterValue(
            f"{size.name} needs quota approval ({size.family}); Lapis does not grant it. "
            "Pick another size from `lapis compute list-sizes`."
        )
    if not fits_host(size, host.cores, host.memory_gib, host.gpus):
        gpus = f" and {size.gpus} GPU" if size.gpus else ""
        hint = ""
        if defaulted:
            hint = f" ({size.name} is the default size; set size: to a smaller one)"
        raise InvalidParameterValue(
            f"{size.name} needs {size.cores} cores and {size.memory_gib:g} GiB{gpus}; "
            f"this host has {host.describe()}{hint}"
        )


def pick_cores(host: HostInfo, n: int, taken: list[tuple[int, ...]]) -> tuple[int, ...]:
    """The ``n`` cores fewest instances are pinned to, so slices overlap as little as can be."""
    load = dict.fromkeys(host.cpus, 0)
    for cpu_set in taken:
        for cpu in cpu_set:
            if cpu in load:
                load[cpu] += 1
    return tuple(sorted(sorted(load, key=lambda cpu: (load[cpu], cpu))[:n]))
