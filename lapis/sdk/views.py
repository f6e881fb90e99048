"""What the SDK hands back: entities that are both built by the caller and answered by the server.

azure-ai-ml uses one class for both sides: ``ManagedOnlineEndpoint(name=…)`` is
sent to ``begin_create_or_update``, ``online_endpoints.get(…)`` answers a
``ManagedOnlineEndpoint`` with ``scoring_uri`` filled in, and scripts change an
attribute of that answer and send it back (``endpoint.traffic = {"blue": 100}``).
Lapis keeps that shape: every entity is a dataclass with the fields a caller
may set plus ``raw``, the server's whole answer (empty for one built in code).
Any key of ``raw`` is also an attribute and an item (``e.scoring_uri`` and
``e["scoring_uri"]`` are the same), and an entity that came from the server
knows which of its fields the caller changed, so sending it back updates just
those (``_changes``).

``Poller`` is the ``begin_*`` convention: the call returns at once and
``result()`` waits, so a notebook can start several deployments and wait later.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar, Generic, Self, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from lapis.api import compute as compute_api
from lapis.api import jobs as jobs_api
from lapis.errors import LapisError

T = TypeVar("T")


def clean(value: Any) -> Any:
    """A document without unset values: ``None``, empty mappings and lists are left out.

    Nested entities become their document (``_as_field``), so a ``Model`` or an
    ``Environment`` given inside a deployment is sent the way YAML would name it.
    """
    as_field = getattr(value, "_as_field", None)
    if callable(as_field):
        return clean(as_field())
    if is_dataclass(value) and not isinstance(value, type):
        return clean({f.name: getattr(value, f.name) for f in fields(value) if f.name != "raw"})
    if isinstance(value, dict):
        out = {str(k): clean(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


class _View:
    """Attributes for the fields, the rest of the server's answer (``raw``) by name too.

    ``wire`` is the route's pydantic model (``lapis.api``): answers are checked
    against the contract the server declares, and ``contract()`` gives them typed.
    ``page`` is where the studio shows one (``studio_url``).
    """

    raw: dict[str, Any]
    wire: ClassVar[type[BaseModel] | None] = None
    page: ClassVar[str | None] = None
    _server_url: str | None = None

    # --- reading ---------------------------------------------------------------------
    def contract(self) -> Any:
        """The answer as its wire model (``lapis.api``), e.g. ``compute.contract().nodes``."""
        if self.wire is None:
            raise AttributeError(f"{type(self).__name__} has no wire model")
        return self.wire.model_validate(self.raw)

    def __getattr__(self, name: str) -> Any:
        if name == "raw" or name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.raw[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}") from None

    @classmethod
    def _names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "raw"]  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> Any:
        """Item access reads the JSON answer (``e["scoring_uri"]``), for dict-style code;
        a field of an entity built in code reads the field."""
        if key in self.raw:
            return self.raw[key]
        if key in self._names():
            return getattr(self, key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return key in self.raw or (
            isinstance(key, str) and key in self._names() and getattr(self, key) is not None
        )

    def keys(self) -> list[str]:
        return list(dict.fromkeys([*self.raw, *self._names()]))

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    @property
    def studio_url(self) -> str | None:
        """The studio page that shows this (``None`` until the server has answered for it)."""
        if self.page is None or self._server_url is None or not self.raw:
            return None
        keys = {k: quote(str(self.raw.get(k, "")), safe="") for k in ("name", "version")}
        return self._server_url + self.page.format(**keys)

    # --- from the server, and back -----------------------------------------------------
    @classmethod
    def _values(cls, raw: dict[str, Any]) -> dict[str, Any]:
        """The fields' values from an answer; entities with nested parts convert them here."""
        return {k: raw.get(k) for k in cls._names()}

    @classmethod
    def _from(cls, raw: dict[str, Any], url: str | None = None) -> Self:
        if cls.wire is not None:
            try:
                cls.wire.model_validate(raw)
            except ValidationError as exc:
                raise LapisError(
                    f"the server's answer is not a {cls.wire.__name__}: {exc.errors()[0]}"
                ) from None
        obj = cls(raw=raw, **cls._values(raw))  # type: ignore[call-arg]
        obj._server_url = url
        return obj

    @property
    def _answered(self) -> bool:
        """Whether this came from the server (then sending it back is an update)."""
        return bool(self.raw)

    def _changes(self) -> dict[str, Any]:
        """The fields the caller set since the server answered, as a document."""
        before = type(self)._values(self.raw)
        return {
            k: clean(getattr(self, k)) for k in self._names() if getattr(self, k) != before.get(k)
        }

    def _document(self) -> dict[str, Any]:
        """Everything set, as the YAML document of this kind would hold it (nested
        entities by reference or inline, as ``clean`` writes them)."""
        return dict(clean({k: getattr(self, k) for k in self._names()}))


@dataclass(repr=False)
class Job(_View):
    """A submitted job as the server sees it (``raw`` holds the whole answer)."""

    wire = jobs_api.JobOut
    page = "/jobs/{name}"

    name: str
    status: str
    status_reason: str | None
    run_id: str
    experiment_id: int | str | None
    experiment_name: str | None
    compute: str
    display_name: str | None
    command: str | None
    environment: str | None
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    tags: dict[str, str]
    exit_code: int | None
    created_at: int | None
    start_time: int | None
    end_time: int | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def terminal(self) -> bool:
        return bool(self.raw.get("terminal"))

    @property
    def id(self) -> str:
        return f"azureml:{self.name}"

    def __repr__(self) -> str:
        return f"Job(name={self.name!r}, status={self.status!r}, compute={self.compute!r})"


@dataclass(repr=False)
class Compute(_View):
    """A compute target (``local`` or a compute instance)."""

    wire = compute_api.ComputeOut
    page = "/compute/{name}"

    name: str
    type: str
    state: str
    state_reason: str | None
    size: str | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def provisioning_state(self) -> str:
        """Azure's name for where a compute is: ``Succeeded`` once up, ``Failed``…"""
        return {"Running": "Succeeded", "Stopped": "Succeeded"}.get(self.state, self.state)

    def __repr__(self) -> str:
        return f"Compute(name={self.name!r}, type={self.type!r}, state={self.state!r})"


# --- long operations ------------------------------------------------------------------
class Poller(Generic[T]):
    """A started long operation, as azure-core's ``LROPoller``.

    ``result()`` waits and gives what the operation made (raising when it
    failed), ``wait()`` waits without answering, ``done()`` and ``status()``
    ask without waiting.
    """

    def __init__(
        self,
        first: T,
        wait: Callable[[float | None], T] | None = None,
        *,
        state: Callable[[T], str] = lambda _v: "Succeeded",
        reason: Callable[[T], str | None] = lambda _v: None,
    ) -> None:
        self._last = first
        self._wait = wait
        self._state = state
        self._reason = reason

    def status(self) -> str:
        """``InProgress``, ``Succeeded`` or ``Failed`` as of the last answer."""
        state = self._state(self._last)
        return state if state in ("Succeeded", "Failed") else "InProgress"

    def done(self) -> bool:
        return self.status() != "InProgress"

    def wait(self, timeout: float | None = None) -> None:
        if not self.done() and self._wait is not None:
            self._last = self._wait(timeout)

    def result(self, timeout: float | None = None) -> T:
        """The final state; an operation that ended ``Failed`` raises with its reason."""
        self.wait(timeout)
        if self.status() == "Failed":
            name = getattr(self._last, "name", None) or "the operation"
            raise LapisError(f"{name} failed: {self._reason(self._last) or 'see its logs'}")
        return self._last


def poll_until(read: Callable[[], T], settled: Callable[[T], bool], timeout: float | None) -> T:
    """Read until ``settled`` (or the timeout passes: then the last reading)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        value = read()
        if settled(value) or (deadline is not None and time.monotonic() > deadline):
            return value
        time.sleep(0.2)
