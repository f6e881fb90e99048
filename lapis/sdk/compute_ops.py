"""``client.compute``: compute instances and ``local``, in azure-ai-ml's shape."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

from lapis.errors import InvalidParameterValue, ResourceDoesNotExist
from lapis.sdk.assets import AmlCompute, ComputeInstance
from lapis.sdk.connection import LapisHTTP
from lapis.sdk.helpers import jsonable, name_of, q, read
from lapis.sdk.views import Compute, Poller, poll_until

_STABLE_COMPUTE = {"Running", "Stopped", "Failed"}


class ComputeOperations:
    """``client.compute``: compute instances and ``local``.

    ``begin_*`` return a ``Poller`` whose ``result()`` waits until the compute
    is Running, Stopped or Failed (azure-ai-ml's convention); the plain verbs
    (``start``…) return at once, or wait with ``wait=True``.
    """

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def _path(self, name: str | Compute) -> str:
        return f"/api/v1/computes/{q(name_of(name))}"

    def _compute(self, raw: dict[str, Any]) -> Compute:
        return Compute._from(raw, self._http.url)

    def create_or_update(
        self,
        compute: ComputeInstance | AmlCompute | dict[str, Any] | str | Path,
        *,
        wait: bool = False,
    ) -> Compute:
        """Create an instance from its entity, document or YAML file; an existing one is
        updated (description, tags, idle shutdown, schedules). ``wait``: until Running,
        Stopped or Failed."""
        if isinstance(compute, (str, Path)):
            path = Path(compute).expanduser()
            doc, source = _compute_file(path), str(path)
        elif isinstance(compute, (ComputeInstance, AmlCompute)):
            doc, source = jsonable(compute._document()), "<sdk>"
        else:
            doc, source = jsonable(dict(compute)), "<sdk>"
        name = doc.get("name")
        if name and self._exists(str(name)):
            body = {k: v for k, v in doc.items() if k != "type"}
            c = self._http.request(
                "PATCH", self._path(str(name)), json_body={**body, "source": source}
            ).json()
        else:
            c = self._http.post("/api/v1/computes", {**doc, "source": source})
        return self._wait(c["name"]) if wait else self._compute(c)

    def get(self, name: str) -> Compute:
        return self._compute(self._http.get(self._path(name)))

    def _exists(self, name: str) -> bool:
        try:
            self._http.get(self._path(name))
        except ResourceDoesNotExist:
            return False
        return True

    def list(self) -> list[Compute]:
        return [self._compute(c) for c in self._http.get("/api/v1/computes")["computes"]]

    def start(self, name: str | Compute, *, wait: bool = False) -> Compute:
        return self._verb(name, "start", wait)

    def stop(self, name: str | Compute, *, wait: bool = False) -> Compute:
        """Stop taking jobs: running ones finish, queued ones wait for the next start."""
        return self._verb(name, "stop", wait)

    def restart(self, name: str | Compute, *, wait: bool = False) -> Compute:
        return self._verb(name, "restart", wait)

    def _poller(self, first: Compute) -> Poller[Compute]:
        return Poller(
            first,
            lambda t: self._wait(first.name, 300.0 if t is None else t),
            state=lambda c: "Failed" if c.state == "Failed" else c.provisioning_state,
            reason=lambda c: c.state_reason,
        )

    def begin_create_or_update(
        self, compute: ComputeInstance | AmlCompute | dict[str, Any] | str | Path
    ) -> Poller[Compute]:
        return self._poller(self.create_or_update(compute))

    def begin_start(self, name: str | Compute) -> Poller[Compute]:
        return self._poller(self.start(name))

    def begin_stop(self, name: str | Compute) -> Poller[Compute]:
        return self._poller(self.stop(name))

    def begin_restart(self, name: str | Compute) -> Poller[Compute]:
        return self._poller(self.restart(name))

    def delete(self, name: str | Compute) -> dict[str, Any]:
        """Delete an instance with no running or queued job."""
        result: dict[str, Any] = self._http.request("DELETE", self._path(name)).json()
        return result

    def begin_delete(self, name: str | Compute) -> Poller[dict[str, Any]]:
        return Poller(self.delete(name))

    def list_sizes(self) -> builtins.list[dict[str, Any]]:
        """The VM size catalogue: what fits this host and the quota left per family."""
        sizes: builtins.list[dict[str, Any]] = self._http.get("/api/v1/compute-sizes")["sizes"]
        return sizes

    def _verb(self, name: str | Compute, verb: str, wait: bool) -> Compute:
        c = self._http.post(f"{self._path(name)}/{verb}")
        return self._wait(c["name"]) if wait else self._compute(c)

    def _wait(self, name: str, timeout: float = 300.0) -> Compute:
        return poll_until(lambda: self.get(name), lambda c: c.state in _STABLE_COMPUTE, timeout)


def _compute_file(path: Path) -> dict[str, Any]:
    """A compute YAML checked here first, so a mistake names its file and line."""
    from lapis.specs.compute import parse_compute  # light, but only needed here
    from lapis.specs.yaml_lines import load

    loc = load(read(path, "compute file"), str(path))
    parse_compute(loc, partial=True)
    if not isinstance(loc.data, dict):
        raise InvalidParameterValue(f"{path}: must be a mapping of compute settings")
    return dict(jsonable(loc.data))
