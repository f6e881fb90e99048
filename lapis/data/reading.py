"""A data asset's files, read by the server for the people allowed to: listed and
streamed for ``lapis data download``, and a preview (the first rows and a schema) for
the studio and ``lapis data show --preview``.

The asset is resolved exactly as a job input is (lapis/data/job_data.py), so the same
rule holds: reading a datastore that has a credential needs the role's ``listsecrets``
action. Previews read CSV/TSV, JSON lines and Parquet files and ``MLTable`` folders
(lapis/data/mltable.py), a few dozen rows, never a whole file.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Any

from lapis.data import mltable
from lapis.data.filesystems import escapes, open_datastore, storage_reason
from lapis.data.job_data import JobData
from lapis.entities.auth import Principal
from lapis.errors import (
    DatastoreError,
    InvalidParameterValue,
    PermissionDenied,
    ResourceDoesNotExist,
)

MAX_FILES = 10_000
PREVIEW_ROWS = 20
CHUNK = 4 * 1024 * 1024
_FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".jsonl": "jsonl", ".json": "jsonl",
            ".parquet": "parquet", ".pq": "parquet"}  # fmt: skip
_READERS: dict[str, tuple[str, dict[str, Any]]] = {
    "csv": ("read_delimited", {}),
    "tsv": ("read_delimited", {"delimiter": "\t"}),
    "jsonl": ("read_json_lines", {}),
    "parquet": ("read_parquet", {}),
}


class SourceFiles:
    """The files at one resolved place (``{"datastore", "rel"}`` or a storage URL's), read
    with the datastore's credential: a data asset's, or a job output's."""

    def __init__(self, data: JobData, source: dict[str, Any], label: str) -> None:
        opened = data.open_source(source)
        self.fs, root = open_datastore(opened["kind"], opened["settings"], opened["secrets"])
        rel = str(opened.get("rel") or "").strip("/")
        self.where = posixpath.join(root, rel) if rel else root
        self.label = label  # what the messages call it ("data asset x:1", "output o of job j")
        if escapes(self.fs, root, self.where):
            raise PermissionDenied(f"{label} leads out of its datastore by a symbolic link")

    def files(self, missing_ok: bool = False) -> tuple[bool, list[dict[str, Any]]]:
        """(whether it is one file, each file's path relative to it and size)."""
        fs, where = self.fs, self.where
        try:
            info = fs.info(where)
            if info.get("type") != "directory":
                return True, [{"path": posixpath.basename(where), "size": info.get("size")}]
            found = []
            for path, meta in sorted(fs.find(where, detail=True).items()):
                if meta.get("type") == "directory" or escapes(fs, where, path):
                    continue  # a link out of the folder is not one of its files
                rel = path[len(where.rstrip("/")) :].lstrip("/")
                found.append({"path": rel, "size": meta.get("size")})
                if len(found) > MAX_FILES:
                    raise InvalidParameterValue(
                        f"{self.label} has more than {MAX_FILES:,} files; read it in a job instead"
                    )
            return False, found
        except FileNotFoundError:
            if missing_ok:
                return False, []
            raise ResourceDoesNotExist(f"{self.label} does not exist") from None
        except (InvalidParameterValue, ResourceDoesNotExist, PermissionDenied):
            raise
        except Exception as exc:  # the storage libraries raise their own types
            raise DatastoreError(f"{self.label}: {storage_reason(exc)}") from None

    def stream(self, path: str, one_file: bool = False) -> tuple[int | None, Iterator[bytes]]:
        """(size, chunks) of one file; ``path`` as ``files`` lists it."""
        from lapis.artifacts.store import clean_relpath

        rel = clean_relpath(path)
        target = self.where if one_file else posixpath.join(self.where, rel)
        if escapes(self.fs, self.where, target):
            raise PermissionDenied(f"'{rel}' leads out of {self.label} by a link")
        try:
            size = self.fs.info(target).get("size")
            handle = self.fs.open(target, "rb")
        except FileNotFoundError:
            raise ResourceDoesNotExist(f"{self.label} has no file '{rel}'") from None
        except Exception as exc:
            raise DatastoreError(f"{self.label}: {storage_reason(exc)}") from None

        def chunks() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(CHUNK):
                    yield chunk

        return size, chunks()


class AssetFiles:
    def __init__(self, data: JobData) -> None:
        self.data = data

    def _locate(
        self, name: str, version: str | None, principal: Principal | None
    ) -> tuple[Any, SourceFiles]:
        asset = self.data.assets.get(name, version)
        label = f"data asset {asset.name}:{asset.version}"
        resolved = self.data.resolve_input(
            "data", asset.type, f"azureml:{asset.name}:{asset.version}", principal, label
        )
        if "source" not in resolved:
            raise InvalidParameterValue(f"{label} is at {asset.path}: fetch it from there")
        return asset, SourceFiles(self.data, resolved["source"], label)

    def files(self, name: str, version: str | None, principal: Principal | None) -> dict[str, Any]:
        """Every file of the asset (path relative to it, size), at most MAX_FILES."""
        asset, located = self._locate(name, version, principal)
        is_file, found = located.files()
        return {"name": asset.name, "version": asset.version, "type": asset.type,
                "is_file": is_file, "files": found}  # fmt: skip

    def stream(
        self, name: str, version: str | None, path: str, principal: Principal | None
    ) -> tuple[int | None, Iterator[bytes]]:
        """(size, chunks) of one file of the asset; ``path`` as ``files`` lists it."""
        asset, located = self._locate(name, version, principal)
        return located.stream(path, one_file=asset.type == "uri_file")

    def preview(
        self, name: str, version: str | None, principal: Principal | None
    ) -> dict[str, Any]:
        """The first rows and the columns (with a type guessed from them) of the asset's
        table: its MLTable, or the first CSV/TSV/JSON-lines/Parquet file in it."""
        asset, located = self._locate(name, version, principal)
        fs, where = located.fs, located.where
        try:
            if asset.type == "mltable" or fs.exists(posixpath.join(where, "MLTable")):
                table = mltable.load_table(fs, where)
                shown, fmt = "MLTable", "mltable"
            else:
                found = where if fs.isfile(where) else _first_table(fs, where)
                if found is None:
                    note = "no CSV, TSV, JSON-lines or Parquet file to preview"
                    return {"format": None, "columns": [], "rows": [], "source": None, "note": note}
                fmt = _FORMATS[posixpath.splitext(found)[1].lower()]
                table = mltable.MLTable(paths=[{"file": found}], reader=_READERS[fmt], fs=fs)
                shown = (
                    posixpath.basename(where) if found == where else posixpath.relpath(found, where)
                )
            columns, rows = table.rows(PREVIEW_ROWS)
        except (InvalidParameterValue, ResourceDoesNotExist, PermissionDenied):
            raise
        except FileNotFoundError:
            raise ResourceDoesNotExist(f"{asset.path} does not exist") from None
        except Exception as exc:
            raise DatastoreError(f"{asset.path}: {storage_reason(exc)}") from None
        schema = [{"name": c, "type": _guess([r.get(c) for r in rows])} for c in columns]
        return {"format": fmt, "source": shown, "columns": schema,
                "rows": [[_cell(r.get(c)) for c in columns] for r in rows]}  # fmt: skip


def _first_table(fs: Any, where: str) -> str | None:
    for path in sorted(fs.find(where)):
        name = posixpath.basename(path)
        wanted = posixpath.splitext(name)[1].lower() in _FORMATS and not name.startswith(".")
        if wanted and not escapes(fs, where, path):
            return str(path)
    return None


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _guess(values: list[Any]) -> str:
    """A column's type from its first values: what a preview needs, not a contract."""
    seen = [v for v in values if v is not None and v != ""]
    if not seen:
        return "empty"
    if all(isinstance(v, bool) for v in seen):
        return "boolean"
    if all(isinstance(v, int) for v in seen):
        return "integer"
    if all(isinstance(v, (int, float)) for v in seen):
        return "number"
    text = [str(v) for v in seen]
    if all(_is(t, int) for t in text):
        return "integer"
    if all(_is(t, float) for t in text):
        return "number"
    if all(t.lower() in ("true", "false") for t in text):
        return "boolean"
    return "string"


def _is(text: str, kind: type) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True
