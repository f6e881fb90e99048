"""The component registry: versioned command components (``az ml component``).

A version is what a pipeline step runs (issue 14): the parsed component, its code as a
snapshot the client uploaded (the server never reads the client's folder), and the
environment as it was given. Versions never change but for tags, description and
``archived``; ``@latest`` is the newest version not archived. Creating a version that
exists with the very same content answers that version (as Azure's create does, so a
pipeline file may register its components every time); other content is refused.
Without ``version:``, the next whole number is used.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import time
from typing import Any

from lapis.api import components as api
from lapis.artifacts.snapshot import check_digest
from lapis.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from lapis.specs.component import ComponentSpec, environment_text, from_dict, parse_component
from lapis.store.sql.components import ComponentRow, ComponentStore
from lapis.store.sql.engine import Database


def _now() -> int:
    return int(time.time() * 1000)


class ComponentService:
    def __init__(self, db: Database, has_snapshot: Any) -> None:
        self.store = ComponentStore(db)
        self.has_snapshot = has_snapshot  # digest -> bool: the job service's snapshot store

    # --- create ------------------------------------------------------------------------
    def create(self, body: dict[str, Any], by: str | None) -> api.ComponentOut:
        """``{"yaml", "source", "snapshot"?, "conda_file_text"?, "environment_file"?}``."""
        text, source = body.get("yaml"), str(body.get("source") or "<component>")
        if not isinstance(text, str):
            raise InvalidParameterValue("'yaml' must be the component file's text")
        spec = parse_component(text, source)
        snapshot = body.get("snapshot")
        if spec.code is not None:
            if not isinstance(snapshot, dict) or not snapshot.get("digest"):
                raise InvalidParameterValue(
                    f"{source}: code: '{spec.code}' must be uploaded as a snapshot first "
                    "(the CLI and SDK do this)"
                )
            digest = check_digest(str(snapshot["digest"]))
            if not self.has_snapshot(digest):
                raise InvalidParameterValue(
                    f"{source}: code: snapshot {digest[:12]} was not uploaded"
                )
            spec.code = digest
        document = {
            "spec": spec.to_dict(),
            "snapshot": snapshot if spec.code else None,
            **{k: body[k] for k in ("conda_file_text", "environment_file") if body.get(k)},
        }
        content = _content_hash(document)
        rows = self.store.versions(spec.name)
        if spec.version is not None:
            same = next((r for r in rows if r.version == spec.version), None)
            if same is not None:
                if same.content_hash == content:
                    return self._view(same)
                raise ResourceAlreadyExists(
                    f"{source}: component {spec.name} version {spec.version} already exists "
                    "with other content: versions never change; give a new version (or leave "
                    "version out for the next number)"
                )
            version = spec.version
        else:
            version = str(1 + max((int(r.version) for r in rows if r.version.isdigit()), default=0))
        document["spec"]["version"] = version
        now = _now()
        row = ComponentRow(
            name=spec.name, version=version, type="command", document=document,
            content_hash=content, description=spec.description, archived=False,
            created_by=by, created_at=now, updated_at=now, tags=dict(spec.tags),
        )  # fmt: skip
        self.store.insert(row)
        return self._view(row)

    # --- read --------------------------------------------------------------------------
    def _rows(self, name: str) -> builtins.list[ComponentRow]:
        rows = self.store.versions(name)
        if not rows:
            raise ResourceDoesNotExist(
                f"Component '{name}' not found; `lapis component list` lists them"
            )
        return rows

    def row(self, name: str, version: str | None = None, label: str | None = None) -> ComponentRow:
        """One version: a number, or none / ``latest``: the newest not archived."""
        rows = self._rows(name)
        if version and version != "latest":
            found = [r for r in rows if r.version == version]
            if not found:
                have = ", ".join(r.version for r in rows)
                raise ResourceDoesNotExist(
                    f"Component {name} has no version {version} (it has {have})"
                )
            return found[0]
        if label not in (None, "latest"):
            raise InvalidParameterValue(f"label '{label}': only 'latest' is known")
        live = [r for r in rows if not r.archived]
        if not live:
            raise ResourceDoesNotExist(f"Every version of component {name} is archived")
        return live[-1]

    def get(
        self, name: str, version: str | None = None, label: str | None = None
    ) -> api.ComponentOut:
        return self._view(self.row(name, version, label))

    def spec(self, name: str, version: str | None = None) -> tuple[ComponentSpec, dict[str, Any]]:
        """The parsed component and what came with it (snapshot, conda text), to run."""
        row = self.row(name, version)
        return from_dict(row.document["spec"]), row.document

    def versions(self, name: str) -> builtins.list[api.ComponentOut]:
        return [self._view(r) for r in reversed(self._rows(name))]

    def list(self, include_archived: bool = False) -> builtins.list[api.ComponentOut]:
        """The newest version of each component (archived ones only when asked)."""
        out = []
        for name in self.store.names():
            rows = [r for r in self.store.versions(name) if include_archived or not r.archived]
            if rows:
                out.append(self._view(rows[-1]))
        return out

    def archive(
        self, name: str, version: str | None, archived: bool
    ) -> builtins.list[api.ComponentOut]:
        """Archive (or restore) one version, or every version."""
        rows = self._rows(name)
        chosen = [r for r in rows if version is None or r.version == version]
        if not chosen:
            raise ResourceDoesNotExist(f"Component {name} has no version {version}")
        now = _now()
        for r in chosen:
            self.store.set(r.name, r.version, now, archived=archived)
        return [self.get(name, r.version) for r in chosen]

    @staticmethod
    def _view(row: ComponentRow) -> api.ComponentOut:
        spec = from_dict(row.document["spec"])
        inputs = [api.ComponentIO(name=k, **{f: getattr(v, f) for f in (
            "type", "default", "optional", "min", "max", "enum", "description")})
            for k, v in spec.inputs.items()]  # fmt: skip
        outputs = [api.ComponentIO(name=k, type=v.type) for k, v in spec.outputs.items()]
        return api.ComponentOut(
            name=row.name, version=row.version, type=row.type, display_name=spec.display_name,
            description=row.description, tags=row.tags, is_deterministic=spec.is_deterministic,
            command=spec.command, environment=environment_text(spec.environment),
            code=spec.code, inputs=inputs, outputs=outputs, archived=row.archived,
            created_by=row.created_by, created_at=row.created_at, updated_at=row.updated_at,
            id=f"azureml:{row.name}:{row.version}",
        )  # fmt: skip


def _content_hash(document: dict[str, Any]) -> str:
    spec = {k: v for k, v in document["spec"].items() if k != "version"}
    snap = (document.get("snapshot") or {}).get("digest")
    rest = {k: v for k, v in document.items() if k not in ("spec", "snapshot")}
    text = json.dumps([spec, snap, rest], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
