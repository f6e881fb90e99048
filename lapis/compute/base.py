"""``ComputeBackend``: the one definition of a compute type.

A compute type (this host, an instance, a Ray cluster next) is one subclass.
The services never ask which type they hold: the compute service drives the
**lifecycle** through it and the job scheduler drives **jobs** through it.

Lifecycle (called by :class:`lapis.compute.service.ComputeService`)::

    provision(c)  once, when the compute is created     → then observe() until ready
    start(c)      when a stopped compute is started     → then observe() until ready
    stop(c)       when it stops (no job running on it any more)
    delete(c)     before its row is deleted
    observe(c)    its nodes and their states, read on every tick

Every call must return quickly (the service calls them on the scheduler's
tick): a backend whose nodes take minutes to come up starts the work and
reports progress through ``observe``; the service moves ``Creating``/``Starting``
to ``Running`` only once every node is ready (``ready``), and to ``Failed``
with the backend's reason when a lifecycle call raises.

Jobs (called by :class:`lapis.jobs.scheduler.JobScheduler`)::

    launch(ctx) → handle          stage inputs and start the job; runs on a worker
                                  thread, never the scheduler's
    poll(handle, cursor)          status events since ``cursor`` and the heartbeat
    alive(handle)                 whether whatever runs the job still exists
    logs(handle, cursor)          the job's log text after ``cursor``
    cancel(handle, force=False)   ask it to stop (``force``: end it now)
    collect(handle)               a folder on this host holding what the job left

A handle is a JSON object the backend alone understands; the scheduler stores
it in the job's row (``jobs.handle``) and gives it back after a restart, so it
must name everything needed to find the job again — never a pickle, never a
live object. Events are the supervisor protocol's dictionaries
(``lapis.compute.supervisor``): ``{"status": "Running", "time": ms, ...}``.

What a type cannot do is declared with its reason in ``capabilities`` and
checked before a job is queued, so a user reads the reason instead of a crash.

The public methods here are template methods: they log and time the call once
for every backend and turn a backend's exception into a ``ComputeError`` with
the compute's name; subclasses implement the ``_`` hooks.
"""

from __future__ import annotations

import abc
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from lapis.entities.compute import Compute
from lapis.entities.jobs import Job
from lapis.errors import LapisError

log = logging.getLogger("lapis.compute")
T = TypeVar("T")
Handle = dict[str, Any]  # JSON object; only its backend reads inside


class ComputeError(LapisError):
    """A backend could not do what was asked (the message names the compute)."""

    error_code = "COMPUTE_ERROR"
    http_status = 500


class Feature(str, enum.Enum):
    """What a job may ask of its compute; a backend lists those it cannot give."""

    MULTI_NODE = "multi_node"  # resources.instance_count > 1
    DISTRIBUTION = "distribution"  # distribution: pytorch / mpi / tensorflow
    GPU = "gpu"


@dataclass(frozen=True)
class NodeState:
    """One node of a compute as its backend sees it now."""

    name: str
    state: str  # "Running", "Starting", "Stopped", "Failed", ...
    detail: str | None = None
    cpu_percent: float | None = None  # of the cores the node offers, lately; None: unknown

    @property
    def ready(self) -> bool:
        return self.state == "Running"


@dataclass(frozen=True)
class LaunchContext:
    """Everything a backend needs to run one job, decided by the scheduler.

    ``env`` holds the variables every job sees whatever runs it (tracking URL,
    the job's token, run and job ids); the backend adds the paths it chose for
    inputs and outputs. ``job_dir`` is this host's folder for the job: the
    backend leaves logs and outputs there (or brings them back to it in
    ``collect``). ``sandbox`` is a confinement policy for backends that run
    processes on this host (``lapis.compute.sandbox``); others ignore it.
    """

    job: Job
    compute: Compute
    job_dir: Path
    snapshots: Path  # content-addressed code snapshots, by digest
    python: str  # the interpreter that runs this server (and the supervisor)
    environment: dict[str, Any]  # how to get the job's Python: built spec or layered system
    env: dict[str, str] = field(default_factory=dict)
    sandbox: dict[str, Any] | None = None
    # by-reference inputs, opened (lapis.data.job_data.JobData.sources): credentials
    # included, so never stored; the backend hands them to the supervisor in a 0600 file
    data: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Progress:
    """What ``poll`` found: new events, where to read next, the last heartbeat."""

    events: list[dict[str, Any]]
    cursor: int
    heartbeat_at: float | None = None  # epoch seconds; None: no heartbeat yet


class ComputeBackend(abc.ABC):
    """Subclass, set ``type_name``, implement the hooks, register (lapis/compute/registry.py)."""

    type_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    limits_memory: ClassVar[bool] = False  # whether a job gets the compute's memory as its cap

    # --- capabilities ----------------------------------------------------------------
    def capabilities(self, compute: Compute) -> dict[Feature, str]:
        """The features this compute cannot give a job, each with the reason."""
        return {
            Feature.MULTI_NODE: (
                f"compute '{compute.name}' ({compute.type}) runs a job on one node; "
                "multi-node jobs need a compute cluster"
            ),
            Feature.DISTRIBUTION: (
                f"compute '{compute.name}' ({compute.type}) runs one process per job; "
                "distributed training needs a compute cluster"
            ),
        }

    def unsupported(self, compute: Compute, spec: Any) -> str | None:
        """Why this compute cannot run ``spec`` (a CommandJobSpec), or None when it can."""
        missing = self.capabilities(compute)
        count = getattr(spec, "instance_count", 1)
        if count > 1 and Feature.MULTI_NODE in missing:
            return f"{missing[Feature.MULTI_NODE]} (resources.instance_count={count})"
        distribution = getattr(spec, "distribution", None)
        if distribution and Feature.DISTRIBUTION in missing:
            return missing[Feature.DISTRIBUTION]
        return None

    # --- lifecycle (template methods) ------------------------------------------------
    def provision(self, compute: Compute) -> None:
        self._call("provision", compute, lambda: self._provision(compute))

    def start(self, compute: Compute) -> None:
        self._call("start", compute, lambda: self._start(compute))

    def stop(self, compute: Compute) -> None:
        self._call("stop", compute, lambda: self._stop(compute))

    def delete(self, compute: Compute) -> None:
        self._call("delete", compute, lambda: self._delete(compute))

    def observe(self, compute: Compute) -> list[NodeState]:
        return self._call("observe", compute, lambda: self._observe(compute), quiet=True)

    def maintain(self, compute: Compute) -> None:
        """Housekeeping of a Running compute, called on the service's tick (scale, replace
        lost nodes); must return quickly and throttle itself. Nothing by default."""
        self._call("maintain", compute, lambda: self._maintain(compute), quiet=True)

    def _maintain(self, compute: Compute) -> None:
        return None

    def ready(self, compute: Compute) -> bool:
        """Whether every node is up, so the compute may be called Running."""
        nodes = self.observe(compute)
        return bool(nodes) and all(n.ready for n in nodes)

    @abc.abstractmethod
    def _provision(self, compute: Compute) -> None: ...

    @abc.abstractmethod
    def _start(self, compute: Compute) -> None: ...

    @abc.abstractmethod
    def _stop(self, compute: Compute) -> None: ...

    @abc.abstractmethod
    def _delete(self, compute: Compute) -> None: ...

    @abc.abstractmethod
    def _observe(self, compute: Compute) -> list[NodeState]: ...

    # --- jobs --------------------------------------------------------------------------
    def launch(self, ctx: LaunchContext) -> Handle:
        """Stage the job's inputs and start it; the handle outlives this process."""
        handle = self._call("launch", ctx.compute, lambda: self._launch(ctx), job=ctx.job.name)
        if not isinstance(handle, dict):
            raise ComputeError(f"backend '{self.type_name}' returned a handle that is not JSON")
        return handle

    @abc.abstractmethod
    def _launch(self, ctx: LaunchContext) -> Handle: ...

    @abc.abstractmethod
    def poll(self, handle: Handle, cursor: int) -> Progress:
        """Status events after ``cursor`` (0: from the start; a replay is harmless)."""

    @abc.abstractmethod
    def alive(self, handle: Handle) -> bool:
        """Whether whatever runs the job still exists (False: it vanished)."""

    @abc.abstractmethod
    def logs(self, handle: Handle, cursor: str | None) -> tuple[str, str]:
        """The job's log text after ``cursor`` and the cursor to continue from."""

    def lost_reason(self, handle: Handle) -> str | None:
        """Why a job that ``alive`` says is gone was lost, when the backend knows (a node).
        A job lost with a reason may be queued again (``limits.max_retries``)."""
        return None

    def preempted(self, handle: Handle) -> bool:
        """Whether the job's node was taken back (a low-priority node's pre-emption)."""
        return False

    @abc.abstractmethod
    def cancel(self, handle: Handle, force: bool = False) -> None:
        """Ask the job to stop (it reports ``Exited`` as Canceled); ``force``: end it now."""

    @abc.abstractmethod
    def collect(self, handle: Handle) -> Path:
        """A folder on this host with the job's outputs and logs (see compute/workdir.py)."""

    # --- shared ------------------------------------------------------------------------
    def _call(
        self,
        what: str,
        compute: Compute,
        fn: Callable[[], T],
        *,
        quiet: bool = False,
        job: str | None = None,
    ) -> T:
        began = time.monotonic()
        try:
            result = fn()
        except LapisError:
            raise
        except Exception as exc:
            log.exception("%s %s on %s failed", self.type_name, what, compute.name)
            raise ComputeError(f"{what} on compute '{compute.name}' failed: {exc}") from exc
        if not quiet:
            took = (time.monotonic() - began) * 1000
            target = f"job {job} on {compute.name}" if job else compute.name
            log.debug("%s %s %s took %.1f ms", self.type_name, what, target, took)
        return result
