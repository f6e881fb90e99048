"""Compute instances: a named, pinned slice of this host (a VM size's cores and memory).

Jobs run exactly as on ``local`` (supervised processes), confined to the
instance's cores and memory by the supervisor. The node is this host, so
there is nothing to boot: provisioning checks the pinned cores still exist,
and ``observe`` reports the one node in the state the lifecycle recorded.
Notebook servers and SSH (workstations) will hang off this backend.
"""

from __future__ import annotations

import os
from typing import ClassVar

from lapis.compute.base import NodeState
from lapis.compute.local import ProcessBackend
from lapis.entities.compute import Compute, ComputeState, ComputeType
from lapis.errors import InvalidState


class InstanceBackend(ProcessBackend):
    type_name: ClassVar[str] = ComputeType.INSTANCE.value
    description: ClassVar[str] = "a pinned slice of this host: the size's cores and memory"
    limits_memory: ClassVar[bool] = True

    def _provision(self, compute: Compute) -> None:
        self._check_cores(compute)

    def _start(self, compute: Compute) -> None:
        self._check_cores(compute)

    def _stop(self, compute: Compute) -> None:
        pass  # the running jobs have ended; nothing else holds the slice

    def _delete(self, compute: Compute) -> None:
        pass

    def _observe(self, compute: Compute) -> list[NodeState]:
        state = compute.state
        if state not in (ComputeState.STOPPED.value, ComputeState.FAILED.value):
            state = ComputeState.RUNNING.value  # a slice of a running host is up at once
        return [NodeState(f"{compute.name}-0", state, f"cores {list(compute.cpu_set)}")]

    @staticmethod
    def _check_cores(compute: Compute) -> None:
        have = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        missing = [c for c in compute.cpu_set if have and c not in have]
        if missing:
            raise InvalidState(
                f"instance '{compute.name}' is pinned to cores {missing} that this host "
                "no longer offers; delete it and create it again"
            )
