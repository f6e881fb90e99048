"""Components from the client: a component file's code is uploaded as a snapshot (and its
environment's files read here) before the server registers the version."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lapis.errors import InvalidParameterValue
from lapis.sdk.connection import LapisHTTP
from lapis.sdk.jobs import code_and_environment
from lapis.specs.component import environment_text, parse_component
from lapis.specs.yaml_lines import read_text_file


def create(http: LapisHTTP, path: Path, changed: dict[str, Any] | None = None) -> dict[str, Any]:
    """Register the component file at ``path`` (a new version, or the same one again);
    ``changed``: top-level fields set on the loaded component since, which win."""
    text = read_text_file(path, "component file")
    if changed:
        import yaml

        text = yaml.safe_dump({**(yaml.safe_load(text) or {}), **changed}, sort_keys=False)
    source = str(path)
    base_dir = path.parent.resolve()
    spec = parse_component(text, source, base_dir)  # checked here first: one line, no upload
    body = {"yaml": text, "source": source, **code_and_environment(http, spec, base_dir, source)}
    made: dict[str, Any] = http.post("/api/v1/components", body)
    return made


def show(http: LapisHTTP, name: str, version: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = http.get(
        f"/api/v1/components/{quote(name, safe='')}/versions/{quote(version or 'latest', safe='')}"
    )
    return found


@dataclass
class CommandComponent:
    """A command component, as azure-ai-ml's ``load_component`` gives it: the file's
    fields as attributes (``inputs``/``outputs`` as dictionaries of their settings), and,
    once registered, ``version`` and ``id`` as the server answered."""

    name: str
    version: str | None = None
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    is_deterministic: bool = True
    command: str = ""
    environment: str = "system"
    code: str | None = None
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    id: str | None = None
    _source: Path | None = None  # the file it was loaded from (its code is next to it)

    def __repr__(self) -> str:
        return f"CommandComponent(name={self.name!r}, version={self.version!r})"

    def __call__(self, **inputs: Any) -> Any:
        """Inside a ``@pipeline`` function: a step running this component with ``inputs``
        (lapis/sdk/dsl.py); its ``.outputs.<name>`` feed other steps."""
        from lapis.sdk.dsl import _node_from_component

        return _node_from_component(self, inputs)


def load_component(source: str | Path) -> CommandComponent:
    """Read a component file (checked as the server checks it; nothing is sent)."""
    path = Path(source)
    spec = parse_component(read_text_file(path, "component file"), str(path), path.parent)
    return CommandComponent(
        name=spec.name, version=spec.version, display_name=spec.display_name,
        description=spec.description, tags=dict(spec.tags),
        is_deterministic=spec.is_deterministic, command=spec.command,
        environment=environment_text(spec.environment), code=spec.code,
        inputs={k: {f: v for f, v in asdict(i).items() if v not in (None, False)}
                for k, i in spec.inputs.items()},
        outputs={k: {"type": o.type} for k, o in spec.outputs.items()}, _source=path,
    )  # fmt: skip


def _answered(raw: dict[str, Any]) -> CommandComponent:
    return CommandComponent(
        name=raw["name"], version=raw["version"], display_name=raw.get("display_name"),
        description=raw.get("description"), tags=raw.get("tags") or {},
        is_deterministic=raw["is_deterministic"], command=raw["command"],
        environment=raw["environment"], code=raw.get("code"), id=raw["id"],
        inputs={i["name"]: {k: v for k, v in i.items() if k != "name" and v not in (None, False)}
                for i in raw["inputs"]},
        outputs={o["name"]: {"type": o["type"]} for o in raw["outputs"]},
    )  # fmt: skip


class ComponentOperations:
    """``client.components``, in azure-ai-ml's shape."""

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def create_or_update(self, component: CommandComponent | str | Path) -> CommandComponent:
        """Register a component loaded from a file (or the file itself)."""
        path = component if isinstance(component, str | Path) else component._source
        if path is None:
            raise InvalidParameterValue(
                "register a component loaded with load_component(source=...) (its file and "
                "code are read from there)"
            )
        changed = {}
        if isinstance(component, CommandComponent):  # what was set on it since it was read
            read = load_component(path)
            for key in ("name", "version", "display_name", "description", "tags"):
                if getattr(component, key) != getattr(read, key):
                    changed[key] = getattr(component, key)
        return _answered(create(self._http, Path(path), changed))

    def get(self, name: str, version: str | None = None, label: str | None = None
            ) -> CommandComponent:  # fmt: skip
        """One version; ``label="latest"`` (or neither): the newest not archived."""
        return _answered(show(self._http, name, version or label))

    def list(self, name: str | None = None) -> list[CommandComponent]:
        if name:
            found = self._http.get(f"/api/v1/components/{quote(name, safe='')}/versions")
        else:
            found = self._http.get("/api/v1/components")
        return [_answered(c) for c in found["components"]]

    def archive(self, name: str, version: str | None = None) -> None:
        self._http.post(f"/api/v1/components/{quote(name, safe='')}/archive",
                        {"version": version} if version else {})  # fmt: skip

    def restore(self, name: str, version: str | None = None) -> None:
        self._http.post(f"/api/v1/components/{quote(name, safe='')}/restore",
                        {"version": version} if version else {})  # fmt: skip
