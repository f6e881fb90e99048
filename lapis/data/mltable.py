"""Azure's ``MLTable`` file, read: which files make the table, how to parse them, and the
common transformations — enough for previews, schemas and ``mltable`` job inputs.

An ``MLTable`` file (YAML, beside the data or pointing at it) says::

    paths:
      - file: ./titanic.csv          # or folder: ./parts/  or pattern: ./data/*.csv
    transformations:
      - read_delimited:
          delimiter: ','
          header: all_files_same_headers
          encoding: utf8
          empty_as_string: false
      - take: 100
      - drop_columns: [PassengerId]

Read here: ``read_delimited`` (``delimiter``, ``header`` — ``all_files_same_headers``,
``from_first_file``, ``all_files_different_headers``, ``no_header`` — ``encoding``,
``empty_as_string``, ``include_path_column``), ``read_parquet``, ``read_json_lines``,
then ``take``, ``skip``, ``drop_columns``, ``keep_columns`` and
``convert_column_types`` (to int, float, boolean, string). Anything else — Azure's
``read_delta_lake``, ``extract_columns_from_partition_format``, ``filter`` with its
expression language, ``take_random_sample`` — is refused in one line naming it, never
silently skipped. Files are read through fsspec, so a table on Blob or S3 reads the
same as one on disk. The standard library parses CSV and JSON lines; Parquet needs
pyarrow, and :meth:`MLTable.to_pandas_dataframe` pandas (``lapis[data]``).
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lapis.errors import InvalidParameterValue
from lapis.specs import yaml_lines
from lapis.specs.yaml_lines import suggest

READERS = ("read_delimited", "read_parquet", "read_json_lines")
STEPS = ("take", "skip", "drop_columns", "keep_columns", "convert_column_types")
KNOWN_UNSUPPORTED = ("read_delta_lake", "extract_columns_from_partition_format", "filter",
                     "take_random_sample", "read_delimited_lines")  # fmt: skip
HEADERS = ("all_files_same_headers", "from_first_file", "all_files_different_headers",
           "no_header")  # fmt: skip
MAX_FILE_BYTES = 1024 * 1024  # an MLTable file is a few lines of YAML
ROW_LIMIT = 100_000  # a preview never needs more; a job input reads whole files itself


@dataclass
class MLTable:
    """A parsed ``MLTable`` file; ``base`` is the folder holding it (fsspec path)."""

    paths: list[dict[str, str]]
    reader: tuple[str, dict[str, Any]] | None
    steps: list[tuple[str, Any]] = field(default_factory=list)
    base: str = ""
    fs: Any = None

    # --- reading ----------------------------------------------------------------------
    def files(self) -> list[str]:
        """Every data file the table names, in order."""
        out: list[str] = []
        for entry in self.paths:
            kind, rel = next(iter(entry.items()))
            target = _join(self.base, rel)
            if kind == "file":
                out.append(target)
            elif kind == "folder":
                out.extend(sorted(p for p in self.fs.find(target) if not _hidden(p)))
            else:  # pattern
                out.extend(sorted(self.fs.glob(target)))
        from lapis.data.filesystems import escapes

        return [p for p in out if not (self.base and escapes(self.fs, self.base, p))]

    def rows(self, limit: int | None = None) -> tuple[list[str], list[dict[str, Any]]]:
        """(columns, rows) after every transformation; at most ``limit`` rows are read."""
        need = _needed(self.steps, limit)
        columns: list[str] = []
        rows: list[dict[str, Any]] = []
        for path in self.files():
            for row in self._read(path, list(columns) or None):
                for key in row:
                    if key not in columns:
                        columns.append(key)
                rows.append(row)
                if need is not None and len(rows) >= need:
                    break
            if need is not None and len(rows) >= need:
                break
        for name, arg in self.steps:
            columns, rows = _apply(name, arg, columns, rows)
        return columns, rows[:limit] if limit is not None else rows

    def to_pandas_dataframe(self) -> Any:
        """The whole table as a pandas DataFrame (azure's ``mltable`` call, same name)."""
        try:
            import pandas as pd
        except ImportError:
            raise InvalidParameterValue("reading an MLTable into pandas needs pandas: "
                                        "pip install 'lapis[data]'") from None  # fmt: skip
        columns, rows = self.rows()
        return pd.DataFrame.from_records(rows, columns=columns)

    def _read(self, path: str, known: list[str] | None) -> Iterator[dict[str, Any]]:
        kind, opts = self.reader or ("read_delimited", {})
        if kind == "read_parquet":
            yield from _parquet(self.fs, path)
            return
        encoding = str(opts.get("encoding", "utf8")).replace("utf8", "utf-8")
        with self.fs.open(path, "rb") as fh:
            text = io.TextIOWrapper(fh, encoding=encoding, newline="")
            if kind == "read_json_lines":
                for line in text:
                    if line.strip():
                        yield json.loads(line)
                return
            yield from _delimited(text, opts, path, known)


def _hidden(path: str) -> bool:
    name = posixpath.basename(path)
    return name.startswith(".") or name == "MLTable"


def _join(base: str, rel: str) -> str:
    if "://" in rel:
        raise InvalidParameterValue(
            f"MLTable paths: '{rel}' is a URL; Lapis reads paths relative to the MLTable "
            "file (register the data where it is with a datastore path instead)"
        )
    if not base:
        return rel
    joined = posixpath.normpath(posixpath.join(base, rel))
    if joined != base.rstrip("/") and not joined.startswith(base.rstrip("/") + "/"):
        raise InvalidParameterValue(
            f"MLTable paths: '{rel}' leads out of the MLTable's folder; name files beside it"
        )
    return joined


def _delimited(
    text: Any, opts: dict[str, Any], path: str, known: list[str] | None
) -> Iterator[dict[str, Any]]:
    """Rows of one delimited file; ``known``: the first file's column names, which
    ``header: from_first_file`` gives the later files (whose first line is data)."""
    header = str(opts.get("header", "all_files_same_headers"))
    reader = csv.reader(text, delimiter=str(opts.get("delimiter", ",")))
    names: list[str] | None = known if header == "from_first_file" and known else None
    empty_as_string = bool(opts.get("empty_as_string", False))
    for values in reader:
        if names is None:
            if header == "no_header":
                names = [f"Column{i + 1}" for i in range(len(values))]
            else:
                names = values
                continue
        row: dict[str, Any] = {}
        for i, value in enumerate(values):
            key = names[i] if i < len(names) else f"Column{i + 1}"
            row[key] = value if (value != "" or empty_as_string) else None
        if opts.get("include_path_column"):
            row["Path"] = path
        yield row


def _parquet(fs: Any, path: str) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidParameterValue(
            "reading Parquet needs pyarrow: pip install 'lapis[data]'"
        ) from None
    with fs.open(path, "rb") as fh:
        table = pq.ParquetFile(fh)
        for batch in table.iter_batches(batch_size=1024):
            yield from batch.to_pylist()


def _needed(steps: list[tuple[str, Any]], limit: int | None) -> int | None:
    """How many rows to read before the steps to show ``limit`` after them."""
    if limit is None:
        return None
    need = limit
    for name, arg in steps:
        if name == "skip":
            need += int(arg)
    return min(need, ROW_LIMIT)


def _convert(value: Any, kind: str) -> Any:
    if value is None:
        return None
    try:
        if kind in ("int", "integer"):
            return int(float(value))
        if kind in ("float", "double", "number"):
            return float(value)
        if kind == "boolean":
            return str(value).strip().lower() in ("true", "1", "yes")
    except ValueError:
        return None  # as Azure's conversion: an unreadable value becomes an error value
    return str(value)


def _apply(
    name: str, arg: Any, columns: list[str], rows: list[dict[str, Any]]
) -> tuple[list[str], list[dict[str, Any]]]:
    if name == "take":
        return columns, rows[: int(arg)]
    if name == "skip":
        return columns, rows[int(arg) :]
    if name in ("drop_columns", "keep_columns"):
        chosen = [arg] if isinstance(arg, str) else list(arg)
        keep = [c for c in columns if (c in chosen) == (name == "keep_columns")]
        return keep, [{c: r.get(c) for c in keep} for r in rows]
    # convert_column_types: [{columns: [a, b], column_type: int}, ...]
    for rule in arg if isinstance(arg, list) else [arg]:
        targets = rule.get("columns", [])
        targets = [targets] if isinstance(targets, str) else targets
        kind = rule.get("column_type")
        kind = next(iter(kind)) if isinstance(kind, dict) else str(kind)
        for r in rows:
            for c in targets:
                if c in r:
                    r[c] = _convert(r[c], kind)
    return columns, rows


def parse(text: str, source: str = "MLTable") -> MLTable:
    """The ``MLTable`` file's paths and transformations, every mistake with its line."""
    loc = yaml_lines.load(text, source)
    doc = loc.data
    if not isinstance(doc, dict):
        raise loc.error((), "an MLTable file is a mapping with paths: and transformations:")
    for key in doc:
        if key not in ("paths", "transformations", "type", "$schema", "metadata", "traits"):
            raise loc.error((str(key),), "is not an MLTable setting")
    paths = doc.get("paths")
    if not isinstance(paths, list) or not paths:
        raise loc.error(("paths",), "must list at least one file:, folder: or pattern:")
    for i, entry in enumerate(paths):
        if not isinstance(entry, dict) or len(entry) != 1 or next(iter(entry)) not in (
            "file", "folder", "pattern"
        ):  # fmt: skip
            raise loc.error(("paths", str(i)), "each path is file:, folder: or pattern:")
    reader: tuple[str, dict[str, Any]] | None = None
    steps: list[tuple[str, Any]] = []
    for i, step in enumerate(doc.get("transformations") or []):
        name, arg = (step, {}) if isinstance(step, str) else next(iter(dict(step).items()))
        where = ("transformations", str(i))
        if name in READERS:
            if reader is not None:
                raise loc.error(where, f"a second reader ({name}): a table has one")
            reader = (name, dict(arg or {}))
            header = reader[1].get("header", "all_files_same_headers")
            if name == "read_delimited" and header not in HEADERS:
                raise loc.error(where, f"header: must be one of {', '.join(HEADERS)}")
        elif name in STEPS:
            steps.append((name, arg))
        elif name in KNOWN_UNSUPPORTED:
            raise loc.error(where, f"the {name} transformation is not supported by Lapis; "
                            f"supported: {', '.join(READERS + STEPS)}")  # fmt: skip
        else:
            raise loc.error(where, f"'{name}' is not an MLTable transformation"
                            f"{suggest(str(name), READERS + STEPS)}")  # fmt: skip
    return MLTable(paths=[{k: str(v) for k, v in p.items()} for p in paths], reader=reader,
                   steps=steps)  # fmt: skip


def load_table(fs: Any, folder: str) -> MLTable:
    """The MLTable in ``folder`` (a path ``fs`` knows), ready to read."""
    where = posixpath.join(folder, "MLTable")
    try:
        size = int(fs.info(where).get("size") or 0)
        if size > MAX_FILE_BYTES:
            raise InvalidParameterValue(f"{where}: an MLTable file over {MAX_FILE_BYTES:,} bytes")
        text = fs.cat(where).decode()
    except FileNotFoundError:
        raise InvalidParameterValue(f"no MLTable file in {folder}") from None
    table = parse(text, "MLTable")
    table.base, table.fs = folder, fs
    return table


def load(uri: str) -> MLTable:
    """``mltable.load`` for code that runs in a job: a local folder (the job's input) or
    any URL fsspec opens."""
    import fsspec

    fs, folder = fsspec.core.url_to_fs(uri)
    return load_table(fs, str(folder).rstrip("/"))
