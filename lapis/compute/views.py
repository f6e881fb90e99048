"""How a compute is shown (``compute show``, the studio, the API): its state, scale,
idle shutdown and what keeps it awake, the next schedule, its jobs, nodes and the tools
an instance serves. A mixin of ComputeService, which has the stores and the lifecycle."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import datetime
from typing import Any

from lapis.api import compute as api
from lapis.compute.base import NodeState
from lapis.compute.clusters import provider_label
from lapis.compute.lifecycle import Lifecycle, fmt_seconds
from lapis.entities.compute import Compute, ComputeState, ComputeType
from lapis.entities.jobs import Job
from lapis.specs.schedules import next_action
from lapis.util import now_ms as _now

S = ComputeState
BUSY_MEMORY_MS = 2_000  # a tick this recent saw jobs: describe() calls the instance busy


class ComputeViews:
    lifecycle: Lifecycle
    applications: Callable[[Compute], builtins.list[dict[str, Any]]]
    get: Callable[[str], Compute]
    jobs_on: Callable[[str], tuple[builtins.list[Job], builtins.list[Job]]]
    nodes: Callable[[str], builtins.list[NodeState]]
    capabilities: Callable[[str], dict[str, str]]

    def detail(self, name: str) -> api.ComputeDetail:
        """One compute as ``compute show`` has it: its jobs, nodes and what it cannot run."""
        c = self.get(name)
        running, queued = self.jobs_on(c.name)
        view = self.describe(c, _now(), busy=bool(running or queued))
        return api.ComputeDetail(
            **dict(view),
            jobs=api.JobsOnCompute(
                running=[_brief(j) for j in running], queued=[_brief(j) for j in queued]
            ),
            nodes=[
                api.NodeOut(name=n.name, state=n.state, detail=n.detail, cpu_percent=n.cpu_percent)
                for n in self.nodes(c.name)
            ],
            unsupported=self.capabilities(c.name),
        )

    def describe(
        self, c: Compute, now_ms: int | None = None, *, busy: bool = False
    ) -> api.ComputeOut:
        """The API's view of a compute, with when and why it will next stop or start."""
        now = _now() if now_ms is None else now_ms
        awake, seen = self.lifecycle.activity(c) if c.state == S.RUNNING.value else ([], 0)
        if busy or now - self.lifecycle.busy_at.get(c.name.lower(), 0) < BUSY_MEMORY_MS:
            awake = ["jobs running or queued", *awake]
        busy = bool(awake)
        out = api.ComputeOut(
            name=c.name,
            type=c.type,
            state=c.state,
            state_reason=c.state_reason,
            size=c.size,
            family=c.family,
            cores=c.cores,
            memory_gib=c.memory_gib,
            gpus=c.gpus,
            slots=c.slots,
            cpu_set=list(c.cpu_set),
            description=c.description,
            tags=c.properties.get("tags", {}),
            ssh_public_access_enabled=c.ssh_enabled,
            idle_time_before_shutdown_seconds=c.idle_shutdown_seconds,
            schedules=[dict(s.items()) for s in c.schedules],
            created_by=c.created_by,
            owner=c.user,
            created_at=c.created_at,
            state_changed_at=c.state_changed_at,
            last_activity_at=c.last_activity_at,
            idle_shutdown=None,
            next_schedule=None,
            awake=awake,
        )
        if c.type == ComputeType.INSTANCE.value:
            out.applications = [api.Application(**a) for a in self.applications(c)]
        if c.type == ComputeType.CLUSTER.value:
            p = c.properties
            out.min_instances = int(p.get("min_instances", 0))
            out.max_instances = int(p.get("max_instances", 1))
            out.idle_time_before_scale_down = int(p.get("idle_time_before_scale_down", 120))
            out.tier = str(p.get("tier", "dedicated"))
            out.provider = provider_label(p)
        if c.idle_shutdown_seconds:
            idle = fmt_seconds(c.idle_shutdown_seconds)
            deadline = None
            if c.state != S.RUNNING.value:
                note = f"idle shutdown after {idle} once Running"
            elif busy:
                note = f"awake: {'; '.join(awake)}; stops {idle} after that ends"
            else:
                last = max(c.last_activity_at, self.lifecycle.busy_at.get(c.name.lower(), 0), seen)
                deadline = last + c.idle_shutdown_seconds * 1000
                note = f"stops at {_clock(deadline)} if still idle ({idle} idle shutdown)"
            out.idle_shutdown = api.IdleShutdown(
                seconds=c.idle_shutdown_seconds, stops_at=deadline, note=note
            )
        soonest = next_action(c.schedules, now)
        if soonest is not None:
            when, sched = soonest
            action, cron, tz = sched["action"], sched["cron"], sched["time_zone"]
            out.next_schedule = api.NextSchedule(
                action=action,
                time=when,
                cron=cron,
                time_zone=tz,
                note=f"{action}s at {_clock(when)} (schedule '{cron}' {tz})",
            )
        return out


def _clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%H:%M")


def _brief(job: Job) -> api.JobBrief:
    return api.JobBrief(
        name=job.name,
        status=job.status,
        status_reason=job.status_reason,
        created_at=job.created_at,
        start_time=job.start_time,
        display_name=job.display_name,
    )
