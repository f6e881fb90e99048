"""Compute backends: how a job is started, watched and stopped on a kind of compute.

The job scheduler owns statuses, queues and artifacts; a backend only runs
things. It receives one ``LaunchContext`` (the prepared job folder and the
limits of the target), returns a JSON-able handle, and answers "is it still
there?" and "stop it". Progress comes back through the job folder's
``events.jsonl`` (see ``lapis.jobs.supervisor``), the same for every backend,
so the scheduler has one code path. Adding a compute type is one module that
subclasses ``ComputeBackend`` and registers itself in ``BACKENDS``.

Backends declare what they cannot do, with the reason (``unsupported``), and
the service refuses a job before it is queued rather than failing it later.
"""

from __future__ import annotations

import abc
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lapis.entities.compute import Compute
from lapis.errors import InvalidParameterValue


@dataclass(frozen=True)
class LaunchContext:
    job_name: str
    job_dir: Path
    compute: Compute
    python: str  # interpreter that runs the supervisor
    extra: dict[str, Any] = field(default_factory=dict)


class ComputeBackend(abc.ABC):
    type_name: str = ""

    def unsupported(self, compute: Compute, spec: Any) -> str | None:
        """Why this target cannot run ``spec`` (a CommandJobSpec), or None when it can."""
        count = getattr(spec, "instance_count", 1)
        if count > 1:
            return (
                f"compute '{compute.name}' ({compute.type}) runs a job on one node; "
                f"resources.instance_count={count} needs a cluster"
            )
        return None

    @abc.abstractmethod
    def launch(self, ctx: LaunchContext) -> dict[str, Any]:
        """Start the job's supervisor; return a JSON handle that outlives this process."""

    @abc.abstractmethod
    def alive(self, handle: dict[str, Any]) -> bool:
        """Whether the supervisor behind ``handle`` still exists."""

    @abc.abstractmethod
    def terminate(self, handle: dict[str, Any], child_pid: int | None) -> None:
        """End the job by force when its supervisor cannot (it is gone or hung)."""


BACKENDS: dict[str, ComputeBackend] = {}


def register(backend: ComputeBackend) -> ComputeBackend:
    BACKENDS[backend.type_name] = backend
    return backend


def backend_for(compute: Compute) -> ComputeBackend:
    if not BACKENDS:
        import lapis.compute.local  # noqa: F401  (registers the built-in backends)
    found = BACKENDS.get(compute.type)
    if found is None:
        close = difflib.get_close_matches(compute.type, list(BACKENDS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise InvalidParameterValue(
            f"No backend runs compute type '{compute.type}'{hint}; known: "
            + ", ".join(sorted(BACKENDS))
        )
    return found
