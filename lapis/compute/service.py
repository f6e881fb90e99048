"""Compute targets: the implicit ``local`` and named compute instances.

An instance is a pinned slice of this host (a VM size's cores and memory)
with Azure ML's lifecycle::

    Creating ─tick→ Running ─stop→ Stopping ─tick, no running job→ Stopped
    Stopped ─start→ Starting ─tick→ Running ─restart→ Restarting ─tick, idle→ Running
    Running ─tick, idle past idle_time_before_shutdown→ Stopped

Who owns what: this service owns every column of ``computes``; the job
scheduler owns the jobs and only *reads* ``Compute.runs_jobs`` (it starts no
job unless the instance is Running, so queued jobs wait while it is stopped)
and calls ``tick`` about every 100 ms with the running and queued job counts
per compute. ``tick`` is where time passes: pending transitions complete,
idle instances stop and start/stop schedules fire. It reads all instances
with one SELECT and writes only when something changes.

Terms: *activity* is the last time an instance had a running or queued job
(or was touched); *idle deadline* is activity + idle shutdown time; a
schedule's *window* is ``(last evaluated, now]`` — the last evaluated time is
kept in memory and persisted in ``properties["schedule_checked_at"]`` so that a
restarted server neither replays a trigger nor loses one from the last minute.
"""

from __future__ import annotations

import builtins
import difflib
from collections.abc import Callable, Mapping
from typing import Any

from lapis.api import compute as api
from lapis.compute.base import NodeState
from lapis.compute.clusters import ClusterOps, known_size, nodes_of
from lapis.compute.host import HostInfo, check_fits, detect_host, pick_cores
from lapis.compute.lifecycle import Lifecycle, stopping_reason
from lapis.compute.registry import BackendRegistry, default_registry
from lapis.compute.views import ComputeViews
from lapis.entities.compute import Compute, ComputeState, ComputeType
from lapis.entities.jobs import Job
from lapis.entities.sizes import (
    CATALOGUE,
    DEFAULT_FAMILY_QUOTA,
    check_quota,
    cores_in_use,
    fits_host,
    get_size,
)
from lapis.errors import (
    InvalidParameterValue,
    InvalidState,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from lapis.specs.compute import parse_compute
from lapis.specs.yaml_lines import Located, located
from lapis.store.sql.computes import ComputeStore
from lapis.store.sql.engine import Database
from lapis.store.sql.jobs import JobStore
from lapis.util import now_ms as _now

S = ComputeState
LOCAL = "local"


class ComputeService(ClusterOps, ComputeViews):
    def __init__(
        self,
        db: Database,
        host: HostInfo | None = None,
        quotas: Mapping[str, int] | None = None,
        backends: BackendRegistry | None = None,
    ) -> None:
        self.db = db
        self.store = ComputeStore(db)
        self.host = host or detect_host()
        self.quotas = dict(quotas or {})
        self.backends = backends or default_registry()
        self.lifecycle = Lifecycle(self.store, self.backends)
        # an instance's tools and their state (lapis/notebooks/lab.py, once the server runs)
        self.applications: Callable[[Compute], list[dict[str, Any]]] = lambda c: []
        self._jobs = JobStore(db)  # read only: which jobs hold or wait for a compute

    @property
    def wake(self) -> Callable[[], None]:
        return self.lifecycle.wake

    @wake.setter
    def wake(self, fn: Callable[[], None]) -> None:
        self.lifecycle.wake = fn  # the job scheduler's: a state change may let jobs start

    def tick(
        self, now_ms: int, running: Mapping[str, int], queued: Mapping[str, int]
    ) -> builtins.list[str]:
        """Apply what is due at ``now_ms`` (lapis/compute/lifecycle.py)."""
        return self.lifecycle.tick(now_ms, running, queued)

    def jobs_on(self, name: str) -> tuple[builtins.list[Job], builtins.list[Job]]:
        """(running, queued) jobs of one compute, each in submission order."""
        return self._jobs.active_on(self.get(name).name)

    def nodes(self, name: str) -> builtins.list[NodeState]:
        """The compute's nodes as its backend sees them now."""
        c = self.get(name)
        return self.backends.for_compute(c).observe(c)

    def capabilities(self, name: str) -> dict[str, str]:
        """What a job cannot ask of this compute, each with the reason."""
        c = self.get(name)
        missing = self.backends.for_compute(c).capabilities(c)
        return {feature.value: reason for feature, reason in missing.items()}

    # --- reading -----------------------------------------------------------------
    def local(self) -> Compute:
        h = self.host
        return Compute(
            name=LOCAL,
            type=ComputeType.LOCAL.value,
            state=S.RUNNING.value,
            cores=h.cores,
            memory_gib=h.memory_gib,
            gpus=h.gpus,
            state_reason="this host; always running",
            description="This host: jobs run as plain processes, outside any instance's slice.",
            cpu_set=h.cpus,
        )

    def get(self, name: str) -> Compute:
        """A compute by name, case-insensitively; ``local`` is always there."""
        if name.lower() == LOCAL:
            return self.local()
        found = self.store.get(name)
        if found is None:
            known = [LOCAL, *self.store.names()]
            close = difflib.get_close_matches(name.lower(), [k.lower() for k in known], n=1)
            hint = ""
            if close:
                hint = f" Did you mean {next(k for k in known if k.lower() == close[0])}?"
            raise ResourceDoesNotExist(
                f"Compute '{name}' does not exist. Known computes: {', '.join(known)}.{hint}"
            )
        return found

    def get_or_local(self, name: str) -> Compute:
        """The compute a job ran on, or ``local`` when it was deleted since (its jobs
        were all done by then: deleting waits for them)."""
        try:
            return self.get(name)
        except ResourceDoesNotExist:
            return self.local()

    def list(self) -> builtins.list[Compute]:
        return [self.local(), *self.store.all()]

    def setup_log(self, name: str, tail: int = 256 * 1024) -> str:
        """The last ``tail`` bytes of an instance's setup scripts' output ("" when none)."""
        from lapis.compute.instance import setup_log

        path = setup_log(self.get(name).name)
        if path is None:
            return ""
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - tail))
            return fh.read().decode("utf-8", "replace")

    def events(self, name: str) -> builtins.list[dict[str, Any]]:
        return self.store.events(self.get(name).name)

    def quota_usage(self) -> dict[str, tuple[int, int]]:
        """Per family: (limit, cores held by instances, running or stopped)."""
        used = cores_in_use((str(c.size), 1) for c in self.store.all() if known_size(c.size))
        families = {s.family for s in CATALOGUE}
        return {f: (self.quotas.get(f, DEFAULT_FAMILY_QUOTA), used.get(f, 0)) for f in families}

    def list_sizes(self) -> builtins.list[api.SizeOut]:
        usage = self.quota_usage()
        out = []
        for s in CATALOGUE:
            limit, used = usage[s.family]
            out.append(
                api.SizeOut(
                    name=s.name,
                    cores=s.cores,
                    memory_gib=s.memory_gib,
                    gpus=s.gpus,
                    gpu_type=s.gpu_type,
                    family=s.family,
                    category=s.category,
                    approval_required=s.approval_required,
                    fits_host=fits_host(s, *self._host_tuple()),
                    quota=api.SizeQuota(limit=limit, used=used, left=max(0, limit - used)),
                )
            )
        return out

    def sizes(self) -> api.SizeList:
        """The size catalogue with this host's capacity beside it."""
        h = self.host
        host = api.HostOut(
            cores=h.cores, memory_gib=h.memory_gib, gpus=h.gpus, cpu_ids=list(h.cpu_ids)
        )
        return api.SizeList(sizes=self.list_sizes(), host=host)

    # --- changing ----------------------------------------------------------------
    def create(
        self,
        doc: Mapping[str, Any] | Located,
        *,
        source: str = "<compute>",
        created_by: str | None = None,
        now_ms: int | None = None,
    ) -> Compute:
        """Check a computeinstance document against names, sizes, this host and quotas."""
        now = _now() if now_ms is None else now_ms
        spec = parse_compute(located(doc, source))
        assert spec.name is not None
        if spec.name.lower() == LOCAL:
            raise InvalidParameterValue(
                "The name 'local' is reserved: it is this host, always available as compute: local"
            )
        size = get_size(spec.size)
        if spec.cluster is None:  # an instance pins this host's cores; cluster nodes do not
            check_fits(size, self.host, defaulted="size" not in spec.given)
        existing = self.store.all()
        if any(c.name.lower() == spec.name.lower() for c in existing):
            raise ResourceAlreadyExists(
                f"Compute '{spec.name}' already exists (names are case-insensitive)"
            )
        used = cores_in_use((str(c.size), nodes_of(c)) for c in existing if known_size(c.size))
        nodes = spec.cluster.max_instances if spec.cluster is not None else 1
        if spec.cluster is not None and (spec.cluster.provider or {}).get("type") == "ray":
            nodes = 0  # an attached cluster brings its own machines
        check_quota(size, nodes, used, self.quotas)
        by = f"by {created_by}" if created_by else "on request"
        if spec.cluster is not None:
            return self._create_cluster(spec, size, by, created_by, now)
        properties: dict[str, Any] = {"tags": spec.tags, "cause": by}
        if spec.ssh_key:  # a public key: the one SSH lets in (lapis/notebooks/ssh.py)
            properties["ssh_key"] = spec.ssh_key
        if spec.setup_scripts:  # run by the instance backend at create and each start
            properties["setup_scripts"] = spec.setup_scripts
        if spec.custom_applications:  # served like JupyterLab (lapis/notebooks/apps.py)
            properties["custom_applications"] = spec.custom_applications
        self.store.insert(
            Compute(
                name=spec.name,
                type=ComputeType.INSTANCE.value,
                state=S.CREATING.value,
                state_reason=f"created {by}",
                cores=size.cores,
                memory_gib=size.memory_gib,
                size=size.name,
                description=spec.description,
                ssh_enabled=spec.ssh_enabled,
                idle_shutdown_seconds=spec.idle_shutdown_seconds,
                schedules=spec.schedules,
                cpu_set=pick_cores(self.host, size.cores, [c.cpu_set for c in existing]),
                properties=properties,
                created_by=created_by,
                owner=spec.assigned_user or created_by,
                created_at=now,
                state_changed_at=now,
                last_activity_at=now,
            )
        )
        self.lifecycle.forget(spec.name)
        created = self.get(spec.name)
        self.lifecycle.call(created, "provision", now)
        self.wake()
        return self.get(spec.name)

    def update(
        self,
        name: str,
        doc: Mapping[str, Any] | Located,
        *,
        source: str = "<compute>",
        now_ms: int | None = None,
    ) -> Compute:
        """Change what may change after creation: description, tags, idle shutdown, schedules."""
        now = _now() if now_ms is None else now_ms
        c = self._instance(name, "updated")
        loc = located(doc, source)
        if c.type == ComputeType.CLUSTER.value and isinstance(loc.data, dict):
            loc.data.setdefault("type", ComputeType.CLUSTER.value)  # a PATCH names no type
        spec = parse_compute(loc, partial=True)
        if spec.name is not None and spec.name.lower() != c.name.lower():
            raise InvalidParameterValue(
                f"The document names '{spec.name}' but you are updating '{c.name}'; "
                "a compute cannot be renamed"
            )
        if "size" in spec.given and spec.size.lower() != (c.size or "").lower():
            raise InvalidParameterValue(
                f"size is fixed at creation ({c.name} is {c.size}); create a new instance "
                f"with size {spec.size} instead"
            )
        if "ssh_public_access_enabled" in spec.given and spec.ssh_enabled != c.ssh_enabled:
            raise InvalidParameterValue(
                "ssh_public_access_enabled is fixed at creation; create a new instance to change it"
            )
        for fixed in ("setup_scripts", "custom_applications"):
            if fixed in spec.given:
                raise InvalidParameterValue(
                    f"{fixed} are fixed at creation (as on Azure); create a new instance"
                )
        if "ssh_settings" in spec.given and spec.ssh_key != c.properties.get("ssh_key"):
            raise InvalidParameterValue(
                "ssh_settings are fixed at creation (as on Azure); create a new instance with "
                "the new key"
            )
        values: dict[str, Any] = {}
        if "description" in spec.given:
            values["description"] = spec.description
        if "tags" in spec.given:
            values["properties"] = {**c.properties, "tags": spec.tags}
        if "idle" in spec.given:
            values["idle_shutdown_seconds"] = spec.idle_shutdown_seconds
            values["last_activity_at"] = now  # the new idle time counts from now
        if "schedules" in spec.given:  # new schedules count from now: no firing in the past
            values["schedules"] = spec.schedules
            props = values.get("properties", c.properties)
            values["properties"] = {**props, "schedule_checked_at": now}
        scale = {"min_instances", "max_instances", "idle_time_before_scale_down", "tier"}
        if c.type == ComputeType.CLUSTER.value and scale & spec.given:
            values["properties"] = self._rescale(c, loc, values.get("properties", c.properties))
        if values:
            self.store.update(c.name, **values)
            self.lifecycle.windows.forget(c.name.lower())
        return self.get(c.name)

    def start(self, name: str, *, by: str | None = None, now_ms: int | None = None) -> Compute:
        c = self._instance(name, "started")
        if c.state in (S.STOPPED.value, S.FAILED.value):
            cause = f"by {by}" if by else "on request"
            now = _now_or(now_ms)
            self._move_or_fail(c, S.STARTING, f"starting {cause}", now, cause)
            self.lifecycle.call(c, "start", now)
            return self.get(c.name)
        if c.state == S.RUNNING.value:
            raise InvalidState(f"Compute '{c.name}' is already Running; nothing to start")
        if c.state == S.STOPPING.value:
            raise InvalidState(
                f"Compute '{c.name}' is Stopping (its running jobs are finishing); "
                "start it again once it is Stopped"
            )
        raise InvalidState(f"Compute '{c.name}' is {c.state}; it will be Running shortly")

    def stop(
        self,
        name: str,
        *,
        by: str | None = None,
        running: int | None = None,
        now_ms: int | None = None,
    ) -> Compute:
        """Stop taking jobs; Stopped once the running ones end (queued ones stay queued)."""
        c = self._instance(name, "stopped")
        if running is None:
            running = len(self._jobs.active_on(c.name)[0])
        if c.state == S.STOPPED.value:
            raise InvalidState(f"Compute '{c.name}' is already Stopped")
        if c.state == S.STOPPING.value:
            raise InvalidState(f"Compute '{c.name}' is already Stopping")
        cause = f"by {by}" if by else "on request"
        self._move_or_fail(c, S.STOPPING, stopping_reason(cause, running), _now_or(now_ms), cause)
        return self.get(c.name)

    def restart(self, name: str, *, by: str | None = None, now_ms: int | None = None) -> Compute:
        c = self._instance(name, "restarted")
        if c.state == S.STOPPED.value:
            raise InvalidState(f"Compute '{c.name}' is Stopped; use `lapis compute start {c.name}`")
        if c.state != S.RUNNING.value:
            raise InvalidState(f"Compute '{c.name}' is {c.state}; only a Running one can restart")
        cause = f"by {by}" if by else "on request"
        reason = f"restarting {cause}; running jobs finish first"
        self._move_or_fail(c, S.RESTARTING, reason, _now_or(now_ms), cause)
        return self.get(c.name)

    def delete(
        self,
        name: str,
        running: int | None = None,
        queued: int | None = None,
        *,
        by: str | None = None,
        now_ms: int | None = None,
    ) -> None:
        """Delete an instance; refused while jobs run on it or wait for it (the one rule)."""
        c = self._instance(name, "deleted")
        if running is None or queued is None:
            active, waiting = self._jobs.active_on(c.name)
            running, queued = len(active), len(waiting)
        if running or queued:
            raise InvalidState(
                f"Compute '{c.name}' has {running} running and {queued} queued job(s); cancel "
                "them or let them finish before deleting it"
            )
        now = _now_or(now_ms)
        if not self.lifecycle.call(c, "delete", now):
            raise InvalidState(f"Compute '{c.name}' could not be deleted: {c.state_reason}")
        self.store.delete(c.name, f"deleted by {by}" if by else "deleted", now)
        self.lifecycle.forget(c.name)

    def touch(self, name: str, now_ms: int) -> None:
        """Record activity (a job started, a user connected): the idle clock restarts."""
        if name.lower() == LOCAL:
            return
        c = self.get(name)
        if now_ms > c.last_activity_at:
            self.store.update(c.name, last_activity_at=now_ms)

    # --- helpers -------------------------------------------------------------------
    def _move_or_fail(self, c: Compute, to: S, reason: str, now: int, cause: str) -> None:
        if not self.lifecycle.move(c, to, reason, now, cause=cause):
            raise InvalidState(f"Compute '{c.name}' changed state meanwhile; look again and retry")

    def _instance(self, name: str, verb: str) -> Compute:
        if name.lower() == LOCAL:
            raise InvalidState(f"'local' is this host: it is always running and cannot be {verb}")
        return self.get(name)

    def _host_tuple(self) -> tuple[int, float, int]:
        return self.host.cores, self.host.memory_gib, self.host.gpus


def _now_or(ms: int | None) -> int:
    return _now() if ms is None else ms
