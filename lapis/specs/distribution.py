"""``distribution:`` of a command job, in Azure ML CLI v2's shape.

``pytorch`` and ``mpi`` take ``process_count_per_instance`` (processes on each of
the job's ``resources.instance_count`` nodes); ``tensorflow`` takes
``worker_count`` and ``parameter_server_count`` (tasks spread evenly over the
nodes). The answer is the plain dict the job keeps; the cluster backend turns
it into a gang (lapis/compute/ray/gang.py).
"""

from __future__ import annotations

from typing import Any

from lapis.specs.yaml_lines import Located, suggest

KINDS = {
    "pytorch": {"process_count_per_instance"},
    "mpi": {"process_count_per_instance"},
    "tensorflow": {"worker_count", "parameter_server_count"},
}
MAX_PROCESSES = 64


def _count(doc: Located, key: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise doc.error(("distribution", key), f"must be a whole number of at least {low}")
    if value > MAX_PROCESSES:
        raise doc.error(("distribution", key), f"must be at most {MAX_PROCESSES}")
    return int(value)


def parse_distribution(doc: Located, value: Any, instance_count: int) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise doc.error(
            ("distribution",), "must be a mapping with a type (pytorch, mpi, tensorflow)"
        )
    kind = str(value.get("type") or "").lower()
    if kind not in KINDS:
        raise doc.error(
            ("distribution", "type"),
            f"must be one of {', '.join(sorted(KINDS))}{suggest(kind, set(KINDS))}",
        )
    for key in value:
        if key != "type" and key not in KINDS[kind]:
            raise doc.error(
                ("distribution", str(key)),
                f"is not a setting of {kind} distribution{suggest(str(key), KINDS[kind])}",
            )
    if kind != "tensorflow":
        per = _count(
            doc, "process_count_per_instance", value.get("process_count_per_instance", 1), 1
        )
        return {"type": kind, "process_count_per_instance": per}
    workers = _count(doc, "worker_count", value.get("worker_count", instance_count), 1)
    servers = _count(doc, "parameter_server_count", value.get("parameter_server_count", 0), 0)
    if (workers + servers) % instance_count:
        raise doc.error(
            ("distribution", "worker_count"),
            f"worker_count + parameter_server_count ({workers + servers}) must spread evenly "
            f"over resources.instance_count ({instance_count}) nodes",
        )
    return {
        "type": kind,
        "worker_count": workers,
        "parameter_server_count": servers,
        "process_count_per_instance": (workers + servers) // instance_count,
    }
