"""An existing Ray cluster attached as a compute cluster (``provider: {type: ray}``).

Someone else runs the cluster (``ray start`` on a few machines, KubeRay on
Kubernetes, Ray's cluster launcher); Lapis starts, stops and scales no node of
it. A job is submitted to the cluster's job API like on a cluster Lapis runs,
its supervisor asking for one CPU (there is no ``lapis_node`` resource to ask
for) and a gang's placement group for ``process_count_per_instance`` CPUs per
node. The nodes must see the workspace home and Lapis' environments at the same
paths as this host (a shared filesystem, or the same host), as with the ssh
provider; and run the same Ray version as Lapis, which is checked when the
cluster is attached.

The cluster's token, when it has one, was sent by the client and is kept in the
cluster's folder (0600), like the token of a cluster Lapis runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from lapis.compute.base import NodeState
from lapis.compute.ray.nodes import TOKEN_FILE, headers
from lapis.errors import InvalidParameterValue

RECENT_LOSS_MS = 600_000


def provider(compute: Any) -> dict[str, Any] | None:
    found = compute.properties.get("provider")
    return found if isinstance(found, dict) and found.get("type") == "ray" else None


def keep_token(folder: Path, token: str) -> None:
    """The attached cluster's token, written once by the service at create (0600)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / TOKEN_FILE
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token)


def _get(url: str, folder: Path, timeout: float = 5.0) -> Any:
    request = urllib.request.Request(url, headers=headers(folder))
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.load(resp)


def connect(compute: Any, folder: Path) -> dict[str, Any]:
    """The state of an attached cluster, once its job API answers with our Ray version:
    a driver of another version cannot join it (Ray refuses, late and obscurely)."""
    import ray

    address = str((provider(compute) or {})["address"])
    try:
        version = _get(f"{address}/api/version", folder)
    except urllib.error.HTTPError as exc:
        hint = (
            " (does the cluster need a token? provider.token_file)"
            if exc.code in (401, 403)
            else ""
        )
        raise InvalidParameterValue(
            f"cluster '{compute.name}': the Ray cluster at {address} answered {exc.code}{hint}"
        ) from None
    except (OSError, ValueError) as exc:
        raise InvalidParameterValue(
            f"cluster '{compute.name}': cannot reach the Ray cluster at {address} ({exc})"
        ) from None
    theirs = str(version.get("ray_version", "?"))
    if theirs != ray.__version__:
        raise InvalidParameterValue(
            f"cluster '{compute.name}': the Ray cluster at {address} runs Ray {theirs} and "
            f"Lapis has Ray {ray.__version__}; a job's driver needs the same version"
        )
    return {
        "attached": True,
        "dashboard_url": address,
        "ray_version": theirs,
        "session": version.get("session_name"),
        "workers": [],
        "last_active": time.time(),
    }


def reachable(where: dict[str, Any]) -> bool | None:
    """True when the job API answers; False when nothing listens there any more (the
    cluster is gone, and its jobs with it); None when it did not answer in time."""
    folder = Path(str(where["folder"]))
    try:
        _get(f"{where['dashboard_url']}/api/version", folder, timeout=5)
    except urllib.error.HTTPError:
        return True  # something answers
    except (ConnectionRefusedError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", exc)
        return None if isinstance(reason, TimeoutError) else False
    except (OSError, ValueError):
        return None
    return True


def lost_reason(handle: dict[str, Any], status: str | None) -> str | None:
    """Why a job on an attached cluster ended without saying so (``status``: Ray's)."""
    where = handle.get("dashboard_url")
    if reachable(handle) is False:
        return f"the attached Ray cluster at {where} stopped answering while the job ran"
    if status == "MISSING":
        return f"the attached Ray cluster at {where} no longer knows the job (restarted?)"
    return None


def observe(name: str, state: dict[str, Any], folder: Path) -> list[NodeState]:
    """The cluster's nodes as Ray reports them: each with its CPUs, what Ray says it is
    doing (busy or idle) and its host's CPU use."""
    address = state["dashboard_url"]
    try:
        summary = _get(f"{address}/nodes?view=summary", folder)["data"]["summary"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [
            NodeState(f"{name}-head", "Unreachable", f"attached Ray cluster at {address}: {exc}")
        ]
    now_ms = time.time() * 1000
    nodes: list[NodeState] = []
    for entry in sorted(
        summary, key=lambda n: (not n.get("raylet", {}).get("isHeadNode"), n.get("ip", ""))
    ):
        raylet = entry.get("raylet") or {}
        cpus = (raylet.get("resourcesTotal") or {}).get("CPU", 0)
        label = f"{name}-{raylet.get('nodeName') or entry.get('ip')}"
        if raylet.get("state") == "DEAD":
            ended = float(raylet.get("endTimeMs") or 0)
            if now_ms - ended < RECENT_LOSS_MS:
                nodes.append(
                    NodeState(
                        label,
                        "Lost",
                        "ended " + time.strftime("%H:%M:%S", time.localtime(ended / 1000)),
                    )
                )
            continue
        doing = (raylet.get("stateSnapshot") or {}).get("state", "")
        what = "busy" if doing == "ACTIVE" else "idle"
        role = "head, " if raylet.get("isHeadNode") else ""
        detail = f"{role}{what}; {cpus:g} CPUs"
        nodes.append(NodeState(label, "Running", detail, float(entry.get("cpu", 0.0))))
    return nodes or [NodeState(f"{name}-head", "Starting", f"attached Ray cluster at {address}")]
