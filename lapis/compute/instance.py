"""Compute instances: a named, pinned slice of this host (a VM size's cores and memory).

Jobs run exactly as on ``local`` (supervised processes), confined to the
instance's cores and memory by the supervisor. The node is this host, which
is already up: provisioning, starting and stopping hold nothing beyond the
state the lifecycle records (the slice is bookkeeping — queued jobs simply do
not start while it is stopped), and ``observe`` reports the one node as that
state says. Notebook servers and SSH (workstations) will hang off this backend,
and that is where ``start``/``stop`` will start and end processes.
"""

from __future__ import annotations

from typing import ClassVar

from lapis.compute.base import NodeState
from lapis.compute.local import ProcessBackend
from lapis.entities.compute import Compute, ComputeState, ComputeType


class InstanceBackend(ProcessBackend):
    type_name: ClassVar[str] = ComputeType.INSTANCE.value
    description: ClassVar[str] = "a pinned slice of this host: the size's cores and memory"
    limits_memory: ClassVar[bool] = True

    def _observe(self, compute: Compute) -> list[NodeState]:
        state = compute.state
        if state not in (ComputeState.STOPPED.value, ComputeState.FAILED.value):
            state = ComputeState.RUNNING.value  # a slice of a running host is up at once
        return [NodeState(f"{compute.name}-0", state, f"cores {list(compute.cpu_set)}")]
