"""Data assets: named, versioned pointers to data, and the uploads that put local data
in the workspace's default datastore.

A version is immutable (only its description, tags and archived flag change) and
points at data where it is: a datastore path, a storage URL, a job's output. Local
data never reaches the server as a path: the client uploads the files to
``workspaceblobstore`` under ``LocalUpload/<content hash>/`` first (what Azure does),
so the same files are stored once however often they are registered, and an
interrupted upload resumes with the files that are not there yet.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import posixpath
import re
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from lapis.api import data as api
from lapis.artifacts.store import ArtifactStore, clean_relpath
from lapis.data.datastores import DEFAULT, DatastoreService
from lapis.errors import InvalidParameterValue, ResourceDoesNotExist
from lapis.specs.data_asset import parse_data_asset
from lapis.specs.yaml_lines import Located
from lapis.store.sql.data_assets import DataAssetStore, DataRow
from lapis.store.sql.engine import Database

UPLOADS = f"datastores/{DEFAULT}"  # inside the artifact root
HASH = re.compile(r"^[0-9a-f]{32}$")


def _single(manifest: Mapping[str, Any]) -> bool:
    """One file uploaded as a ``uri_file``: stored as itself, not inside a folder."""
    files = manifest["files"]
    return bool(
        manifest["kind"] == "uri_file" and len(files) == 1 and files[0]["path"] == manifest["leaf"]
    )


def _stored(manifest: Mapping[str, Any], path: str) -> str:
    """Where a file of an upload lands, below ``LocalUpload/<upload>/``."""
    return path if _single(manifest) else f"{manifest['leaf']}/{path}"


def _now() -> int:
    return int(time.time() * 1000)


class DataAssetService:
    def __init__(
        self, db: Database, datastores: DatastoreService, artifacts: ArtifactStore
    ) -> None:
        self.store = DataAssetStore(db)
        self.datastores = datastores
        self.artifacts = artifacts

    # --- versions ----------------------------------------------------------------------
    def _view(self, row: DataRow) -> api.DataOut:
        return api.DataOut(**{k: v for k, v in row.__dict__.items() if k != "uri"}, path=row.uri)

    def create(
        self, doc: Mapping[str, Any] | Located, source: str, by: str | None, job: str | None = None
    ) -> api.DataOut:
        spec = parse_data_asset(doc, source)
        assert spec.uri is not None
        if spec.uri.kind == "local":
            raise InvalidParameterValue(
                f"{source}: 'path' {spec.uri.text} is a local path: the lapis CLI and SDK upload "
                "it first (the server never reads a path from its own disk)",
                field="path",
            )
        if spec.uri.kind == "datastore":
            self.datastores.get(str(spec.uri.datastore))  # it must exist
        existing = self.store.versions(spec.name)
        name = existing[0].name if existing else spec.name
        version = spec.version or str(
            1 + max((int(r.version) for r in existing if r.version.isdigit()), default=0)
        )
        now = _now()
        row = DataRow(
            name=name, version=version, type=spec.type, uri=spec.uri.text,
            description=spec.description, archived=False, job=job, created_by=by,
            created_at=now, updated_at=now, tags=spec.tags, properties=spec.properties,
        )  # fmt: skip
        self.store.insert(row)
        return self._view(row)

    def versions(self, name: str, include_archived: bool = True) -> builtins.list[api.DataOut]:
        rows = self.store.versions(name)
        if not rows:
            raise ResourceDoesNotExist(
                f"Data asset '{name}' not found; `lapis data list` lists them"
            )
        return [self._view(r) for r in reversed(rows) if include_archived or not r.archived]

    def get(self, name: str, version: str | None = None, label: str | None = None) -> api.DataOut:
        """One version; none, ``latest`` or ``@latest``: the newest that is not archived."""
        rows = self.store.versions(name)
        if not rows:
            raise ResourceDoesNotExist(
                f"Data asset '{name}' not found; `lapis data list` lists them"
            )
        if version and version != "latest":
            found = [r for r in rows if r.version == version]
            if not found:
                have = ", ".join(r.version for r in rows)
                raise ResourceDoesNotExist(
                    f"Data asset {rows[0].name} has no version {version} (it has {have})"
                )
            return self._view(found[0])
        if label not in (None, "latest"):
            raise InvalidParameterValue(f"label '{label}': only 'latest' is known")
        live = [r for r in rows if not r.archived]
        if not live:
            raise ResourceDoesNotExist(f"Every version of data asset {rows[0].name} is archived")
        return self._view(live[-1])

    def list(self, include_archived: bool = False) -> builtins.list[api.DataOut]:
        """The newest version of each asset (archived ones only when asked)."""
        out = []
        for name in self.store.names():
            rows = [r for r in self.store.versions(name) if include_archived or not r.archived]
            if rows:
                out.append(self._view(rows[-1]))
        return out

    def archive(
        self, name: str, version: str | None, archived: bool = True
    ) -> builtins.list[api.DataOut]:
        """Hide a version (or every version) from listings and ``@latest``; jobs naming it
        exactly still work."""
        rows = self.store.versions(name)
        targets = [r for r in rows if version is None or r.version == version]
        if not targets:
            raise ResourceDoesNotExist(
                f"Data asset '{name}'" + (f" version {version}" if version else "") + " not found"
            )
        now = _now()
        for r in targets:
            self.store.set(r.name, r.version, now, archived=archived)
        return self.versions(name)

    # --- uploads of local data -----------------------------------------------------------
    def _upload_dir(self, upload: str) -> str:
        if not HASH.match(upload):
            raise InvalidParameterValue(f"'{upload}' is not an upload id (32 hex digits)")
        return f"{UPLOADS}/LocalUpload/{upload}"

    def _manifest(self, upload: str) -> dict[str, Any]:
        try:
            data = b"".join(self.artifacts.iter_read(f"{UPLOADS}/.uploads/{upload}.json"))
        except ResourceDoesNotExist:
            raise ResourceDoesNotExist(f"upload {upload} was not begun") from None
        found: dict[str, Any] = json.loads(data)
        return found

    async def _write(self, rel: str, data: bytes) -> None:
        async def once() -> AsyncIterator[bytes]:
            yield data

        await self.artifacts.write_stream(rel, once())

    async def begin_upload(
        self, files: builtins.list[dict[str, Any]], leaf: str, kind: str
    ) -> dict[str, Any]:
        """Record what will come (paths, sizes, sha256), named by its content; answer where
        it will be and which files are not there yet (all, or none when the same content
        was uploaded before, or the rest of an interrupted upload)."""
        if kind not in ("uri_file", "uri_folder", "mltable"):
            raise InvalidParameterValue(
                f"type must be uri_file, uri_folder or mltable, got {kind!r}"
            )
        leaf = clean_relpath(leaf)
        if not leaf or "/" in leaf:
            raise InvalidParameterValue(f"'{leaf}' must be the name of the file or folder uploaded")
        clean: builtins.list[dict[str, Any]] = []
        for f in files:
            path = clean_relpath(str(f.get("path", "")))
            if not path or not re.fullmatch(r"[0-9a-f]{64}", str(f.get("sha256", ""))):
                raise InvalidParameterValue(f"bad file entry {f!r}: path, size and sha256 needed")
            clean.append({"path": path, "size": int(f["size"]), "sha256": str(f["sha256"])})
        if not clean:
            raise InvalidParameterValue("nothing to upload: the folder is empty")
        lines = "\n".join(
            f"{f['path']}\t{f['size']}\t{f['sha256']}"
            for f in sorted(clean, key=lambda f: f["path"])
        )
        upload = hashlib.sha256(f"{kind}\n{leaf}\n{lines}".encode()).hexdigest()[:32]
        base = self._upload_dir(upload)
        manifest: dict[str, Any] = {"leaf": leaf, "kind": kind, "files": clean}
        await self._write(f"{UPLOADS}/.uploads/{upload}.json", json.dumps(manifest).encode())
        present = {i.path: i.file_size for i in self.artifacts.walk_files(base)}
        missing = [
            f["path"] for f in clean if present.get(_stored(manifest, f["path"])) != f["size"]
        ]
        where = base.removeprefix(UPLOADS + "/") + f"/{leaf}" + ("" if _single(manifest) else "/")
        sizes = {f["path"]: int(f["size"]) for f in clean}
        partial = {}
        for path in missing:  # a file whose upload broke off: it resumes where it stopped
            have = self.artifacts.partial_size(self._partial(upload, path))
            if have and have < sizes[path]:
                partial[path] = have
        return {"upload": upload, "missing": missing, "partial": partial,
                "path": f"azureml://datastores/{DEFAULT}/paths/{where}"}  # fmt: skip

    @staticmethod
    def _partial(upload: str, path: str) -> str:
        """Where a file's bytes gather until it is whole (kept if the client goes away)."""
        return f"{UPLOADS}/.partial/{upload}/{hashlib.sha256(path.encode()).hexdigest()[:32]}"

    async def upload_file(
        self, upload: str, path: str, chunks: AsyncIterator[bytes], offset: int = 0
    ) -> int:
        """One file of a begun upload — from byte ``offset`` when an earlier try broke off
        (``begin_upload`` says where) — checked against its sha256 as it streams in."""
        manifest = self._manifest(upload)
        path = clean_relpath(path)
        entry = next((f for f in manifest["files"] if f["path"] == path), None)
        if entry is None:
            raise InvalidParameterValue(f"'{path}' is not a file of upload {upload}")
        digest = hashlib.sha256()
        size = int(entry["size"])
        if not 0 <= offset <= size:
            raise InvalidParameterValue(f"offset {offset} is outside '{path}' ({size} bytes)")
        partial = self._partial(upload, path)
        if offset:
            if self.artifacts.partial_size(partial) != offset:
                raise InvalidParameterValue(
                    f"'{path}': the server does not hold its first {offset:,} bytes; "
                    "send it from the start"
                )
            for chunk in self.artifacts.read_partial(partial):
                digest.update(chunk)

        async def hashed() -> AsyncIterator[bytes]:
            seen = offset
            async for chunk in chunks:
                seen += len(chunk)
                if seen > size:  # never more on disk than the manifest said
                    raise InvalidParameterValue(f"'{path}' is longer than its {size} bytes")
                digest.update(chunk)
                yield chunk

        rel = posixpath.join(self._upload_dir(upload), _stored(manifest, path))
        if not self.artifacts.is_local:  # an object store cannot append: whole files only
            written = await self.artifacts.write_stream(rel, hashed())
            whole = digest.hexdigest() == entry["sha256"] and written == size
            if not whole:
                self.artifacts.delete(rel)
        else:
            if not offset and self.artifacts.partial_size(partial):
                self.artifacts.delete(partial)  # sent from the start again: begin afresh
            written = await self.artifacts.append_stream(partial, hashed(), offset)
            whole = digest.hexdigest() == entry["sha256"] and written == size
            if whole:
                self.artifacts.finish_partial(partial, rel)
            else:
                self.artifacts.delete(partial)
        if not whole:
            raise InvalidParameterValue(
                f"'{path}' arrived changed (size or sha256 differs): upload it again"
            )
        return written
