"""The compute service's cluster side: create (``type: amlcompute``), a live cluster's new
scale, and ``compute: serverless`` (a workspace-managed cluster per size).

A mixin of ``ComputeService``: the methods use its store, quotas and lifecycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lapis.compute.lifecycle import Lifecycle
from lapis.entities.compute import Compute, ComputeType
from lapis.entities.compute import ComputeState as S
from lapis.entities.sizes import (
    BY_NAME,
    DEFAULT_FAMILY_QUOTA,
    check_quota,
    cores_in_use,
    get_size,
)
from lapis.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from lapis.specs.compute import ClusterSettings, ComputeSpec, cluster_settings
from lapis.specs.yaml_lines import Located
from lapis.store.sql.computes import ComputeStore

SERVERLESS_SIZE = "Standard_DS3_v2"  # Azure's default for serverless jobs
SERVERLESS_MAX_NODES = 4
SERVERLESS_IDLE_SECONDS = 120


def nodes_of(c: Compute) -> int:
    """How many nodes of its size a compute may hold (a cluster's maximum)."""
    if c.type == ComputeType.CLUSTER.value:
        if (c.properties.get("provider") or {}).get("type") == "ray":
            return 0  # an attached Ray cluster's nodes are not this workspace's cores
        return int(c.properties.get("max_instances", 1))
    return 1


def provider_label(props: Mapping[str, Any]) -> str:
    """Where a cluster's nodes run, in a few words (never its token)."""
    given = props.get("provider") or {}
    if given.get("hosts"):
        return f"ssh: {', '.join(given['hosts'])}"
    if given.get("address"):
        return f"ray: {given['address']} (attached)"
    return "local"


def known_size(size: str | None) -> bool:
    return size is not None and size.lower() in BY_NAME


class ClusterOps:
    """Cluster methods of ``ComputeService`` (which provides what is declared here)."""

    store: ComputeStore
    quotas: dict[str, int]
    lifecycle: Lifecycle

    if TYPE_CHECKING:  # ComputeService's own methods, used here

        def wake(self) -> None: ...

        def get(self, name: str) -> Compute: ...

        def create(
            self,
            doc: Mapping[str, Any] | Located,
            *,
            source: str = "<compute>",
            created_by: str | None = None,
            now_ms: int | None = None,
        ) -> Compute: ...

        def start(
            self, name: str, *, by: str | None = None, now_ms: int | None = None
        ) -> Compute: ...

    def preempt(self, name: str, node: int | None = None) -> dict[str, Any]:
        """The pre-emption drill of a low-priority cluster: take one worker node back, as
        the cloud would (``node``: its index; default the busiest). Its job is queued
        again (lapis/jobs/retry.py); the cluster replaces the node if it needs one."""
        c = self.get(name)
        if c.type != ComputeType.CLUSTER.value:
            raise InvalidParameterValue(
                f"Compute '{c.name}' is not a cluster; only clusters pre-empt"
            )
        if str(c.properties.get("tier", "dedicated")) != "low_priority":
            raise InvalidParameterValue(
                f"Cluster '{c.name}' is dedicated; only low_priority nodes are pre-empted "
                "(create the cluster with tier: low_priority)"
            )
        if c.state != S.RUNNING.value:
            raise InvalidParameterValue(f"Cluster '{c.name}' is {c.state}; nothing to pre-empt")
        taken: str = self.lifecycle.backend(c).preempt(c, node)  # type: ignore[attr-defined]
        return {"compute": c.name, "node": taken}

    def serverless(self, instance_type: str | None, source: str = "<job>") -> Compute:
        """``compute: serverless``: the workspace's managed cluster for that size, made on
        first use (0..N nodes, N as the family's quota allows, up to 4), scaled to zero
        when idle; the job runs there like on any cluster."""
        try:
            size = get_size(instance_type or SERVERLESS_SIZE)
        except ResourceDoesNotExist as exc:
            raise InvalidParameterValue(
                f"{source}: resources.instance_type: {exc.message}"
            ) from None
        name = "serverless-" + size.name.lower().removeprefix("standard_").replace("_", "-")
        name = name[:24].rstrip("-")
        found = self.store.get(name)
        if found is not None:
            if found.state in (S.STOPPED.value, S.FAILED.value):
                self.start(name, by="serverless")
            return self.get(name)
        counted = [c for c in self.store.all() if known_size(c.size)]
        used = cores_in_use((str(c.size), nodes_of(c)) for c in counted)
        left = self.quotas.get(size.family, DEFAULT_FAMILY_QUOTA) - used.get(size.family, 0)
        nodes = max(1, min(SERVERLESS_MAX_NODES, left // max(size.cores, 1)))
        doc = {
            "name": name,
            "type": ComputeType.CLUSTER.value,
            "size": size.name,
            "min_instances": 0,
            "max_instances": nodes,
            "idle_time_before_scale_down": SERVERLESS_IDLE_SECONDS,
            "description": "serverless: managed by the workspace, scaled to zero when idle",
        }
        try:
            return self.create(doc, source=source, created_by=None)
        except ResourceAlreadyExists:  # made by a job submitted at the same moment
            return self.get(name)

    def _create_cluster(
        self, spec: ComputeSpec, size: Any, by: str, created_by: str | None, now: int
    ) -> Compute:
        """A cluster row (its scale in ``properties``), then its head is started."""
        from lapis.compute.ray.cluster import ray_missing

        missing = ray_missing()
        if missing:
            raise InvalidParameterValue(missing)
        assert spec.name is not None and spec.cluster is not None
        token = (spec.cluster.provider or {}).pop("token", None)  # kept in a file, never shown
        self.store.insert(
            Compute(
                name=spec.name,
                type=ComputeType.CLUSTER.value,
                state=S.CREATING.value,
                state_reason=f"created {by}",
                cores=size.cores,
                memory_gib=size.memory_gib,
                size=size.name,
                description=spec.description,
                properties={"tags": spec.tags, "cause": by, **spec.cluster.as_properties()},
                created_by=created_by,
                owner=created_by,
                created_at=now,
                state_changed_at=now,
                last_activity_at=now,
            )
        )
        if token:
            from lapis.compute.ray.attached import keep_token
            from lapis.compute.ray.cluster import folder_of

            keep_token(folder_of(spec.name), token)
        self.lifecycle.forget(spec.name)
        self.lifecycle.call(self.get(spec.name), "provision", now)
        self.wake()
        return self.get(spec.name)

    def _rescale(self, c: Compute, loc: Located, props: Mapping[str, Any]) -> dict[str, Any]:
        """A live cluster's new scale (its backend starts or releases nodes on its tick);
        a higher maximum must still fit the family's quota."""
        current = ClusterSettings(
            min_instances=int(props.get("min_instances", 0)),
            max_instances=int(props.get("max_instances", 1)),
            idle_seconds=int(props.get("idle_time_before_scale_down", 120)),
            tier=str(props.get("tier", "dedicated")),
            provider=props.get("provider"),
        )
        data = loc.data if isinstance(loc.data, Mapping) else {}
        new = cluster_settings(loc, data, base=current)
        if new.max_instances > current.max_instances:
            others = [x for x in self.store.all() if x.name != c.name and known_size(x.size)]
            used = cores_in_use((str(x.size), nodes_of(x)) for x in others)
            check_quota(get_size(str(c.size)), new.max_instances, used, self.quotas)
        return {**props, **new.as_properties()}
