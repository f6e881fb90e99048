"""Which backend runs which compute type: built-ins first, then plug-ins.

A third-party package adds a compute type by declaring an entry point in the
``lapis.compute_backends`` group that names a ``ComputeBackend`` subclass (or
an instance)::

    [project.entry-points."lapis.compute_backends"]
    slurm = "lapis_slurm:SlurmBackend"

The built-ins are registered before any plug-in is loaded and a name is never
registered twice, so a plug-in can add types but never silently replace one:
a clash is refused and logged with both names. An unknown type is answered
with the known ones and the closest match.
"""

from __future__ import annotations

import difflib
import logging
import threading
from importlib.metadata import entry_points

from lapis.compute.base import ComputeBackend
from lapis.entities.compute import Compute
from lapis.errors import InvalidParameterValue

log = logging.getLogger("lapis.compute")
ENTRY_POINT_GROUP = "lapis.compute_backends"


class DuplicateBackend(ValueError):
    """Two backends claimed one compute type."""


class BackendRegistry:
    def __init__(self) -> None:
        self._backends: dict[str, ComputeBackend] = {}
        self._origin: dict[str, str] = {}
        self.refused: list[str] = []  # plug-ins not loaded, with the reason (shown by the CLI)

    def register(self, backend: ComputeBackend, origin: str = "built-in") -> ComputeBackend:
        name = backend.type_name
        if not name:
            raise ValueError(f"{type(backend).__name__} has no type_name")
        if name in self._backends:
            raise DuplicateBackend(
                f"compute type '{name}' is already provided by {self._origin[name]}; "
                f"{origin} cannot register it again"
            )
        self._backends[name] = backend
        self._origin[name] = origin
        return backend

    def get(self, type_name: str) -> ComputeBackend:
        found = self._backends.get(type_name)
        if found is None:
            known = sorted(self._backends)
            close = difflib.get_close_matches(type_name, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise InvalidParameterValue(
                f"No backend runs compute type '{type_name}'{hint}; known: {', '.join(known)}"
            )
        return found

    def for_compute(self, compute: Compute) -> ComputeBackend:
        return self.get(compute.type)

    def names(self) -> list[str]:
        return sorted(self._backends)

    def origin(self, type_name: str) -> str:
        return self._origin[type_name]

    def load_plugins(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Register every backend the installed packages declare; a broken one is skipped."""
        for ep in entry_points(group=group):
            origin = f"plug-in '{ep.value}'"
            try:
                obj = ep.load()
                backend = obj() if isinstance(obj, type) else obj
                if not isinstance(backend, ComputeBackend):
                    raise TypeError(f"{ep.value} is not a ComputeBackend")
                if backend.type_name != ep.name:
                    raise ValueError(
                        f"entry point '{ep.name}' loads a backend for '{backend.type_name}'"
                    )
                self.register(backend, origin)
            except Exception as exc:  # one bad plug-in must not stop the server
                self.refused.append(f"{ep.name}: {exc}")
                log.warning("compute backend %s not loaded: %s", ep.name, exc)


_default: BackendRegistry | None = None
_lock = threading.Lock()


def builtin_registry() -> BackendRegistry:
    """A registry holding only the built-in types (tests build their own on top)."""
    from lapis.compute.instance import InstanceBackend
    from lapis.compute.local import LocalBackend
    from lapis.compute.ray.cluster import RayClusterBackend

    registry = BackendRegistry()
    registry.register(LocalBackend())
    registry.register(InstanceBackend())
    registry.register(RayClusterBackend())
    return registry


def default_registry() -> BackendRegistry:
    """The process-wide registry: built-ins, then the installed plug-ins (loaded once)."""
    global _default
    with _lock:
        if _default is None:
            registry = builtin_registry()
            registry.load_plugins()
            _default = registry
        return _default


def backend_for(compute: Compute) -> ComputeBackend:
    return default_registry().for_compute(compute)
