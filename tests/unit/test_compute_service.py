"""Compute instances: rules at creation, the lifecycle through ``tick``, idle shutdown, schedules.

Every test runs on SQLite and (when configured) PostgreSQL, against a small
made-up host so that the size and quota refusals do not depend on the machine.
Time is passed explicitly (``now_ms``), so nothing here sleeps.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from lapis.compute.host import HostInfo
from lapis.compute.service import ComputeService
from lapis.entities.compute import ComputeState
from lapis.errors import (
    InvalidParameterValue,
    InvalidState,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from lapis.specs.yaml_lines import load
from lapis.store.sql.engine import Database

HOST = HostInfo(cores=4, memory_gib=23.4)
T0 = 1_700_000_000_000


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def doc(name: str = "cpu", size: str = "Standard_DS1_v2", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "computeinstance", "size": size, **extra}


@pytest.fixture
def svc(database: Database) -> ComputeService:
    return ComputeService(database, host=HOST)


def events(svc: ComputeService, name: str) -> list[str]:
    return [e["state"] for e in svc.store.events(name)]


# --- creation rules ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("ab", "3 to 24 characters"),
        ("a" * 25, "3 to 24 characters"),
        ("cpu_one", "only contain letters, digits and '-'"),
        ("1cpu", "must start with a letter"),
        ("cpu-1", "no letter follows"),
    ],
)
def test_each_naming_rule_is_named_when_broken(svc: ComputeService, name: str, rule: str) -> None:
    with pytest.raises(InvalidParameterValue, match=re.escape(rule)):
        svc.create(doc(name))


def test_names_are_unique_case_insensitively_and_local_is_reserved(svc: ComputeService) -> None:
    svc.create(doc("cpu"))
    with pytest.raises(ResourceAlreadyExists, match="already exists"):
        svc.create(doc("CPU"))
    with pytest.raises(InvalidParameterValue, match="'local' is reserved"):
        svc.create(doc("Local"))


def test_unknown_size_suggests_the_close_one(svc: ComputeService) -> None:
    with pytest.raises(InvalidParameterValue, match="Did you mean Standard_DS2_v2"):
        svc.create(doc(size="Standard_DS2_v9"))
    assert svc.create(doc(size="standard_ds2_V2")).size == "Standard_DS2_v2"


def test_size_must_fit_this_host(database: Database) -> None:
    small = ComputeService(database, host=HostInfo(cores=2, memory_gib=23.4))
    with pytest.raises(InvalidParameterValue) as exc:
        small.create(doc(size="Standard_DS3_v2"))
    assert "Standard_DS3_v2 needs 4 cores and 14 GiB; this host has 2 cores and 23.4 GiB" in str(
        exc.value
    )
    with pytest.raises(InvalidParameterValue, match="1 GPU"):
        small.create(doc(size="Standard_NC4as_T4_v3"))
    with pytest.raises(InvalidParameterValue, match="default size"):
        small.create({"name": "cpu", "type": "computeinstance"})


def test_sizes_needing_approval_are_refused(svc: ComputeService) -> None:
    with pytest.raises(InvalidParameterValue, match="needs quota approval"):
        svc.create(doc(size="Standard_NC6s_v3"))


def test_quota_counts_stopped_instances_until_they_are_deleted(database: Database) -> None:
    svc = ComputeService(database, host=HOST, quotas={"standardDSv2Family": 4})
    svc.create(doc("one", "Standard_DS2_v2"), now_ms=T0)
    svc.create(doc("two", "Standard_DS2_v2"), now_ms=T0)
    with pytest.raises(InvalidParameterValue) as exc:
        svc.create(doc("three", "Standard_DS1_v2"))
    assert "needs 1 cores, 4 of 4 are in use (0 left)" in exc.value.message
    svc.tick(T0 + 100, {}, {})
    svc.stop("one", now_ms=T0 + 200)
    svc.tick(T0 + 300, {}, {})
    assert svc.get("one").state == "Stopped"
    with pytest.raises(InvalidParameterValue, match="Quota exceeded"):
        svc.create(doc("three", "Standard_DS1_v2"))
    svc.delete("one")
    assert svc.create(doc("three", "Standard_DS1_v2")).name == "three"
    sizes = {s.name: s for s in svc.list_sizes()}
    assert sizes["Standard_DS1_v2"].quota.model_dump() == {"limit": 4, "used": 3, "left": 1}
    assert sizes["Standard_DS3_v2"].fits_host and not sizes["Standard_NC6s_v3"].fits_host
    assert sizes["Standard_NC6s_v3"].approval_required


def test_instances_are_pinned_to_the_least_used_cores(svc: ComputeService) -> None:
    assert svc.create(doc("aaa", "Standard_DS2_v2")).cpu_set == (0, 1)
    assert svc.create(doc("bbb", "Standard_DS2_v2")).cpu_set == (2, 3)
    assert svc.create(doc("ccc", "Standard_DS1_v2")).cpu_set == (0,)
    assert svc.create(doc("ddd", "Standard_DS1_v2")).cpu_set == (1,)
    c = svc.get("DDD")
    assert (c.cores, c.slots, c.memory_limit_bytes) == (1, 2, int(3.5 * 1024**3))


def test_local_is_always_there(svc: ComputeService) -> None:
    local = svc.get("LOCAL")
    assert (local.type, local.state, local.cores) == ("local", "Running", 4)
    assert local.cpu_set == (0, 1, 2, 3) and local.runs_jobs
    svc.create(doc("gpu-box"))
    assert [c.name for c in svc.list()] == ["local", "gpu-box"]
    with pytest.raises(InvalidState, match="always running"):
        svc.stop("local")
    with pytest.raises(ResourceDoesNotExist) as exc:
        svc.get("gpu-bx")
    assert "Known computes: local, gpu-box" in exc.value.message
    assert "Did you mean gpu-box?" in exc.value.message


# --- lifecycle -------------------------------------------------------------------------
def test_lifecycle_through_tick(svc: ComputeService) -> None:
    c = svc.create(doc(), created_by="alice", now_ms=T0)
    assert (c.state, c.state_reason, c.runs_jobs) == ("Creating", "created by alice", False)
    assert svc.tick(T0 + 100, {}, {}) == ["cpu"]
    assert svc.get("cpu").state == "Running" and svc.get("cpu").runs_jobs
    assert svc.tick(T0 + 200, {"cpu": 1}, {}) == []
    with pytest.raises(InvalidState, match="already Running"):
        svc.start("cpu")

    c = svc.stop("cpu", by="alice", running=1, now_ms=T0 + 300)
    assert c.state == "Stopping" and not c.runs_jobs
    assert "waiting for 1 running job" in str(c.state_reason)
    assert svc.tick(T0 + 400, {"cpu": 1}, {"cpu": 2}) == []  # the running job finishes first
    assert svc.tick(T0 + 500, {}, {"cpu": 2}) == ["cpu"]
    c = svc.get("cpu")
    assert (c.state, c.state_reason, c.state_changed_at) == (
        "Stopped",
        "stopped by alice",
        T0 + 500,
    )
    assert svc.tick(T0 + 600, {}, {"cpu": 2}) == []  # queued jobs wait; nothing starts it
    with pytest.raises(InvalidState, match="already Stopped"):
        svc.stop("cpu")
    with pytest.raises(InvalidState, match="use `lapis compute start cpu`"):
        svc.restart("cpu")

    assert svc.start("cpu", by="bob", now_ms=T0 + 700).state == "Starting"
    svc.tick(T0 + 800, {}, {"cpu": 2})
    assert svc.get("cpu").state_reason == "started by bob"

    assert svc.restart("cpu", now_ms=T0 + 900).state == "Restarting"
    assert svc.tick(T0 + 1000, {"cpu": 1}, {}) == []
    svc.tick(T0 + 1100, {}, {})
    assert svc.get("cpu").state == "Running"
    assert events(svc, "cpu") == [
        "Creating",
        "Running",
        "Stopping",
        "Stopped",
        "Starting",
        "Running",
        "Restarting",
        "Running",
    ]


def test_delete_is_refused_while_jobs_run_or_wait(svc: ComputeService) -> None:
    svc.create(doc(), now_ms=T0)
    with pytest.raises(InvalidState, match="1 running and 2 queued"):
        svc.delete("cpu", running=1, queued=2)
    with pytest.raises(InvalidState, match="0 running and 1 queued"):
        svc.delete("CPU", running=0, queued=1)
    svc.delete("Cpu", by="alice", now_ms=T0 + 5)
    with pytest.raises(ResourceDoesNotExist):
        svc.get("cpu")
    assert svc.store.events("cpu")[-1] == {
        "state": "Deleted",
        "reason": "deleted by alice",
        "time": T0 + 5,
    }


# --- idle shutdown -----------------------------------------------------------------------
def test_idle_shutdown_counts_from_the_last_job(svc: ComputeService) -> None:
    svc.create(doc(idle_time_before_shutdown="PT5S"), now_ms=T0)
    svc.tick(T0 + 100, {}, {})  # Running; idle since T0+100
    svc.tick(T0 + 3000, {"cpu": 1}, {})  # busy at T0+3s
    svc.tick(T0 + 4000, {}, {"cpu": 1})  # queued counts as busy too
    assert svc.tick(T0 + 8000, {}, {}) == []  # idle for 4 s only
    view = svc.describe(svc.get("cpu"), T0 + 8000)
    assert view.idle_shutdown.stops_at == T0 + 9000
    assert re.search(r"stops at \d\d:\d\d if still idle", view.idle_shutdown.note)
    assert svc.tick(T0 + 9000, {}, {}) == ["cpu"]
    c = svc.get("cpu")
    assert (c.state, c.state_reason) == ("Stopped", "idle for 5 s (idle_time_before_shutdown)")
    assert events(svc, "cpu")[-1] == "Stopped"  # directly, without Stopping


def test_idle_minutes_and_touch(svc: ComputeService) -> None:
    svc.create(doc(idle_time_before_shutdown_minutes=1), now_ms=T0)
    svc.tick(T0, {}, {})
    svc.touch("cpu", T0 + 50_000)
    assert svc.tick(T0 + 100_000, {}, {}) == []
    assert svc.tick(T0 + 110_000, {}, {}) == ["cpu"]
    assert svc.get("cpu").state_reason == "idle for 1 min (idle_time_before_shutdown)"


# --- schedules --------------------------------------------------------------------------
STOP_AT_SIX = {
    "compute_start_stop": [
        {"action": "stop", "trigger": {"type": "cron", "expression": "0 18 * * *"}},
        {"action": "start", "trigger": {"type": "cron", "expression": "30 8 * * *"}},
    ]
}


def test_cron_schedules_stop_and_start_through_tick(svc: ComputeService) -> None:
    svc.create(doc(schedules=STOP_AT_SIX), now_ms=ms("2024-05-01T17:58:00"))
    svc.tick(ms("2024-05-01T17:58:00.100"), {}, {})
    view = svc.describe(svc.get("cpu"), ms("2024-05-01T17:59:00"))
    assert view.next_schedule.action == "stop"
    assert view.next_schedule.time == ms("2024-05-01T18:00:00")
    assert svc.tick(ms("2024-05-01T17:59:59.900"), {"cpu": 1}, {}) == []
    assert svc.tick(ms("2024-05-01T18:00:00.050"), {"cpu": 1}, {}) == ["cpu"]
    c = svc.get("cpu")
    assert c.state == "Stopping" and "by schedule '0 18 * * *'" in str(c.state_reason)
    svc.tick(ms("2024-05-01T18:03:00"), {}, {})
    assert svc.get("cpu").state == "Stopped"
    assert svc.tick(ms("2024-05-02T08:29:59"), {}, {}) == []
    assert svc.tick(ms("2024-05-02T08:30:00.100"), {}, {}) == ["cpu"]
    c = svc.get("cpu")
    assert c.state == "Running" and "started by schedule '30 8 * * *'" in str(c.state_reason)
    assert events(svc, "cpu")[-2:] == ["Starting", "Running"]


def test_a_restarted_server_neither_replays_nor_loses_recent_triggers(database: Database) -> None:
    first = ComputeService(database, host=HOST)
    first.create(doc(schedules=STOP_AT_SIX), now_ms=ms("2024-05-01T17:58:00"))
    first.tick(ms("2024-05-01T18:00:00.100"), {}, {})
    assert first.get("cpu").state == "Stopped"
    first.start("cpu", now_ms=ms("2024-05-01T18:00:05"))
    first.tick(ms("2024-05-01T18:00:06"), {}, {})
    again = ComputeService(database, host=HOST)  # the server restarted
    assert again.tick(ms("2024-05-01T18:00:30"), {}, {}) == []
    assert again.get("cpu").state == "Running"

    again.create(doc("late", schedules=STOP_AT_SIX), now_ms=ms("2024-05-02T17:58:00"))
    again.create(doc("soon", schedules=STOP_AT_SIX), now_ms=ms("2024-05-02T17:59:50"))
    again.tick(ms("2024-05-02T17:59:55"), {}, {})
    third = ComputeService(database, host=HOST)  # down from 17:59:55 to 18:00:40
    assert sorted(third.tick(ms("2024-05-02T18:00:40"), {}, {})) == ["cpu", "late", "soon"]
    fourth = ComputeService(database, host=HOST)
    fourth.start("late", now_ms=ms("2024-05-03T17:59:00"))
    fourth.tick(ms("2024-05-03T17:59:01"), {}, {})
    fifth = ComputeService(database, host=HOST)  # down over 18:00 for five minutes
    assert "late" not in fifth.tick(ms("2024-05-03T18:05:00"), {}, {})
    assert fifth.get("late").state == "Running"


def test_schedules_added_later_count_from_the_update(svc: ComputeService) -> None:
    svc.create(doc(), now_ms=ms("2024-05-01T17:00:00"))
    svc.tick(ms("2024-05-01T17:00:01"), {}, {})
    svc.update("cpu", {"schedules": STOP_AT_SIX}, now_ms=ms("2024-05-01T18:00:30"))
    assert svc.tick(ms("2024-05-01T18:00:31"), {}, {}) == []  # 18:00 was before the update
    assert svc.get("cpu").state == "Running"


# --- update ------------------------------------------------------------------------------
def test_update_changes_what_may_change_and_refuses_the_rest(svc: ComputeService) -> None:
    svc.create(doc(ssh_public_access_enabled=False), now_ms=T0)
    with pytest.raises(InvalidParameterValue, match="size is fixed at creation"):
        svc.update("cpu", {"size": "Standard_DS2_v2"})
    with pytest.raises(InvalidParameterValue, match="ssh_public_access_enabled is fixed"):
        svc.update("cpu", {"ssh_public_access_enabled": True})
    with pytest.raises(InvalidParameterValue, match="cannot be renamed"):
        svc.update("cpu", {"name": "other"})
    c = svc.update(
        "CPU",
        {
            "size": "standard_ds1_v2",
            "description": "notebooks",
            "tags": {"team": "vision"},
            "idle_time_before_shutdown_minutes": 30,
            "schedules": STOP_AT_SIX,
        },
        now_ms=T0 + 10,
    )
    assert (c.description, c.idle_shutdown_seconds, len(c.schedules)) == ("notebooks", 1800, 2)
    assert c.properties["tags"] == {"team": "vision"} and c.last_activity_at == T0 + 10
    c = svc.update("cpu", {"idle_time_before_shutdown_minutes": 0})
    assert c.idle_shutdown_seconds is None and c.description == "notebooks"
    with pytest.raises(InvalidState, match="always running"):
        svc.update("local", {"description": "x"})


# --- YAML ----------------------------------------------------------------------------------
GOOD = """\
$schema: https://azuremlschemas.azureedge.net/latest/computeInstance.schema.json
name: nb-one
type: computeinstance
size: STANDARD_DS1_V2
idle_time_before_shutdown: "PT30M"
schedules:
  compute_start_stop:
    - action: stop
      trigger:
        type: cron
        expression: "0 18 * * 1-5"
        time_zone: Europe/Berlin
"""


def test_azure_yaml_loads(svc: ComputeService) -> None:
    c = svc.create(load(GOOD, "nb.yml"))
    assert (c.name, c.size, c.idle_shutdown_seconds) == ("nb-one", "Standard_DS1_v2", 1800)
    assert c.schedules[0]["time_zone"] == "Europe/Berlin"


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("size: STANDARD_DS1_V2", "sise: STANDARD_DS1_V2", "nb.yml:4: 'sise' is not"),
        ('"PT30M"', '"30 minutes"', "nb.yml:5: 'idle_time_before_shutdown' must be an ISO 8601"),
        (
            '"0 18 * * 1-5"',
            '"0 18 * *"',
            "nb.yml:11: 'schedules.compute_start_stop.0.trigger.expression'",
        ),
        (
            "Europe/Berlin",
            "Mars/Olympus",
            "nb.yml:12: 'schedules.compute_start_stop.0.trigger.time_zone'",
        ),
        ("action: stop", "action: pause", "nb.yml:8: 'schedules.compute_start_stop.0.action'"),
        ("name: nb-one", "name: nb_one", "nb.yml:2: Invalid compute name"),
        (
            "type: computeinstance",
            "type: virtualmachine",
            "nb.yml:3: virtualmachine computes are not supported yet",
        ),
        ("size: STANDARD_DS1_V2", "size: 4", "nb.yml:4: 'size' must be a VM size name"),
    ],
)
def test_yaml_errors_name_file_line_and_key(
    svc: ComputeService, old: str, new: str, where: str
) -> None:
    with pytest.raises(InvalidParameterValue) as exc:
        svc.create(load(GOOD.replace(old, new), "nb.yml"))
    assert exc.value.message.startswith(where), exc.value.message


def test_state_enum_matches_what_tick_writes() -> None:
    assert {s.value for s in ComputeState} >= {"Creating", "Running", "Stopping", "Stopped"}


# --- the lifecycle goes through the compute's backend ----------------------------------------
class SlowCloudInstance:
    """TEST DOUBLE of a cloud VM provider (which cannot exist on one machine): nodes take
    two observations to come up, and provisioning fails when asked to."""

    def __new__(cls, fail: str | None = None) -> Any:
        from lapis.compute.base import NodeState
        from lapis.compute.instance import InstanceBackend

        class Backend(InstanceBackend):
            calls: list[str] = []

            def _provision(self, compute: Any) -> None:
                self.calls.append("provision")
                if fail:
                    raise RuntimeError(fail)

            def _start(self, compute: Any) -> None:
                self.calls.append("start")

            def _stop(self, compute: Any) -> None:
                self.calls.append("stop")

            def _delete(self, compute: Any) -> None:
                self.calls.append("delete")

            def _observe(self, compute: Any) -> list[Any]:
                self.calls.append("observe")
                up = self.calls.count("observe") > 1
                return [NodeState("vm-0", "Running" if up else "Starting")]

        return Backend()


def _service_with(database: Database, backend: Any) -> ComputeService:
    from lapis.compute.local import LocalBackend
    from lapis.compute.registry import BackendRegistry

    registry = BackendRegistry()
    registry.register(LocalBackend())
    registry.register(backend)
    return ComputeService(database, host=HOST, backends=registry)


def test_the_backend_is_called_and_running_waits_for_its_nodes(database: Database) -> None:
    backend = SlowCloudInstance()
    svc = _service_with(database, backend)
    svc.create(doc(), now_ms=T0)
    assert backend.calls == ["provision"]
    svc.tick(T0 + 100, {}, {})
    assert svc.get("cpu").state == "Creating"  # the node is still starting
    svc.tick(T0 + 200, {}, {})
    assert svc.get("cpu").state == "Running"
    assert [n.state for n in svc.nodes("cpu")] == ["Running"]
    svc.stop("cpu", now_ms=T0 + 300)
    svc.tick(T0 + 400, {}, {})
    assert svc.get("cpu").state == "Stopped" and backend.calls[-1] == "stop"
    svc.start("cpu", now_ms=T0 + 500)
    assert backend.calls[-1] == "start"
    svc.delete("cpu", now_ms=T0 + 600)
    assert backend.calls[-1] == "delete"


def test_a_backend_failure_fails_the_compute_with_its_reason(database: Database) -> None:
    svc = _service_with(database, SlowCloudInstance(fail="no capacity in this region"))
    c = svc.create(doc(), now_ms=T0)
    assert c.state == "Failed"
    assert "provision on compute 'cpu' failed: no capacity in this region" in str(c.state_reason)
    assert not c.runs_jobs


def test_stop_and_delete_count_the_jobs_themselves(database: Database) -> None:
    """The rule 'no delete while jobs run or wait' lives in the service, for every face."""
    from lapis.store.sql.jobs import JobStore

    svc = ComputeService(database, host=HOST)
    svc.create(doc(), now_ms=T0)
    svc.tick(T0 + 100, {}, {})
    jobs = JobStore(database)
    with database.write() as conn:
        jobs.create(
            conn,
            {
                "name": "j1",
                "run_id": "1" * 32,
                "experiment_id": 0,
                "compute": "cpu",
                "spec": {},
            },
            T0,
        )
    from lapis.entities.job_status import JobStatus

    jobs.transition("j1", JobStatus.QUEUED, time_ms=T0)
    with pytest.raises(InvalidState, match="0 running and 1 queued"):
        svc.delete("cpu")
    running, queued = svc.jobs_on("cpu")
    assert (len(running), [j.name for j in queued]) == (0, ["j1"])
