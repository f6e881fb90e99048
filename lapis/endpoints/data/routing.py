"""The route table: what the scoring data plane needs to know, published by the control plane.

Two halves of online serving meet here and nowhere else:

- the **control plane** (``lapis.endpoints.control.deployments``: deployment specs,
  the instance manager thread that starts, probes, restarts and rolls over
  instance processes) *publishes* an :class:`EndpointRoute` whenever an
  endpoint's keys, traffic or instances change;
- the **data plane** (``lapis.endpoints.data.proxy``: the ASGI scoring route on the
  Lapis server) *reads* the table on every request, without touching the
  database: key check, traffic pick, a free instance, forward, telemetry.

Publishing replaces a whole :class:`EndpointRoute` (one dict assignment,
atomic under the GIL), so a request sees either the old route or the new one.
:class:`Instance` objects are shared between successive routes of the same
process: the control plane re-publishes the *same* object while the process
lives, so ``in_flight`` (kept by the data plane) survives a re-publish and
tells the control plane when an old instance has drained during a rollover.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from lapis.specs.deployment import DEFAULT_MAX_CONCURRENT, DEFAULT_REQUEST_TIMEOUT_MS


@dataclass(eq=False)
class Instance:
    """One running scoring process of a deployment.

    ``ready`` is set by the control plane from the readiness probe and
    cleared the moment the process is seen dead; the data plane routes only
    to ready instances and calls :meth:`RouteTable.report_failure` when a
    connection to one fails, so the control plane can look at once.
    """

    deployment: str
    index: int
    generation: int
    host: str
    port: int
    ready: bool = False
    in_flight: int = 0
    draining: bool = False  # an older generation: no new requests, stopped once idle

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def label(self) -> str:
        return f"{self.deployment}/{self.index}@{self.generation}"


@dataclass
class DeploymentRoute:
    """A deployment as the data plane sees it (names keep the user's spelling)."""

    name: str
    instances: list[Instance] = field(default_factory=list)
    max_concurrent_requests_per_instance: int = DEFAULT_MAX_CONCURRENT
    request_timeout_ms: int = DEFAULT_REQUEST_TIMEOUT_MS

    def serving(self) -> list[Instance]:
        """Instances that may take a new request."""
        return [i for i in self.instances if i.ready and not i.draining]


@dataclass
class EndpointRoute:
    """An endpoint as the data plane sees it.

    ``traffic`` and ``mirror_traffic`` map deployment names (as the user spelt
    them) to percents; ``deployments`` is keyed by the lower-cased name, since
    the ``azureml-model-deployment`` header is matched case-insensitively.
    """

    name: str
    keys: tuple[str, ...]
    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    deployments: dict[str, DeploymentRoute] = field(default_factory=dict)
    auth_mode: str = "key"  # aml_token: callers present a token signed with keys[0]

    def deployment(self, name: str) -> DeploymentRoute | None:
        return self.deployments.get(name.lower())


class RouteTable:
    """Endpoint name (lower case) → :class:`EndpointRoute`, shared by both planes."""

    def __init__(self) -> None:
        self._routes: dict[str, EndpointRoute] = {}
        self._lock = threading.Lock()  # writers only; readers take a plain dict lookup
        self._failure_listeners: list[Callable[[str, Instance], None]] = []

    # --- data plane ----------------------------------------------------------------
    def get(self, endpoint: str) -> EndpointRoute | None:
        return self._routes.get(endpoint.lower())

    def report_failure(self, endpoint: str, instance: Instance) -> None:
        """A connection to ``instance`` failed: stop routing to it and tell the control plane."""
        instance.ready = False
        for listener in list(self._failure_listeners):
            listener(endpoint, instance)

    # --- control plane -------------------------------------------------------------
    def publish(self, route: EndpointRoute) -> None:
        with self._lock:
            self._routes[route.name.lower()] = route

    def remove(self, endpoint: str) -> None:
        with self._lock:
            self._routes.pop(endpoint.lower(), None)

    def names(self) -> list[str]:
        return list(self._routes)

    def on_failure(self, listener: Callable[[str, Instance], None]) -> None:
        """Call ``listener(endpoint, instance)`` (from the data plane's thread) on failures."""
        self._failure_listeners.append(listener)
