"""YAML loading that remembers where every value came from.

A job file is written by hand, so every complaint about it should point at a
line: ``job.yml:7: key 'comand' is not allowed``. PyYAML's composer keeps a
mark on each node; this module turns the node tree into plain Python values
plus a map from key path to line number.
"""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from lapis.errors import InvalidParameterValue

Path = tuple[str, ...]


@dataclass
class Located:
    """A parsed document and the 1-based line of each key path (``("inputs", "lr")``)."""

    data: Any
    source: str
    lines: dict[Path, int] = field(default_factory=dict)

    def where(self, path: Path) -> str:
        """``file:line`` of the deepest known prefix of ``path``."""
        for n in range(len(path), -1, -1):
            line = self.lines.get(path[:n])
            if line is not None:
                return f"{self.source}:{line}"
        return self.source

    def error(self, path: Path, message: str) -> InvalidParameterValue:
        key = ".".join(path)
        prefix = f"{self.where(path)}: " + (f"'{key}' " if key else "")
        return InvalidParameterValue(prefix + message, file=self.source, key=key or None)


def _convert(node: yaml.Node, path: Path, lines: dict[Path, int]) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(_convert(key_node, (*path, "<key>"), {}))
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(v, (*path, str(i)), lines) for i, v in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


# Budgets for hand-written documents. Aliases share nodes, so a few hundred bytes of
# ``&a [*a, *a, …]`` levels describe billions of values ("billion laughs"): the expanded
# size is counted on the node graph, in linear time, before anything is built from it.
MAX_EXPANDED_NODES = 100_000
MAX_DEPTH = 200
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024


def read_text_file(path: os.PathLike[str] | str, what: str = "file") -> str:
    """A hand-written document's text, or one line saying why not — quickly.

    A FIFO, a device or ``/dev/zero`` behind a symlink would block or never end, so
    only regular files are opened; size is capped before and while reading; bytes that
    are not UTF-8 are reported with their line instead of a ``UnicodeDecodeError``.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise InvalidParameterValue(f"cannot read {what} {path}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InvalidParameterValue(f"cannot read {what} {path}: it is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise InvalidParameterValue(
            f"cannot read {what} {path}: not a regular file (a pipe, device or socket)"
        )
    too_big = InvalidParameterValue(
        f"cannot read {what} {path}: over the {MAX_DOCUMENT_BYTES // 2**20} MB limit for documents"
    )
    if info.st_size > MAX_DOCUMENT_BYTES:
        raise too_big
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise InvalidParameterValue(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise too_big
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidParameterValue(
            f"{path}:{line}: {what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at "
            f"offset {exc.start})",
            file=str(path),
        ) from None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_budget(root: yaml.Node, source: str) -> None:
    """Refuse a document whose aliases expand past the budget, or that refers to itself."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            total = 1 + sum(sizes[id(c)] for c in _children(node))
            sizes[key] = min(total, MAX_EXPANDED_NODES + 1)
            if total > MAX_EXPANDED_NODES:
                raise InvalidParameterValue(
                    f"{source}:{node.start_mark.line + 1}: YAML aliases expand to more than "
                    f"{MAX_EXPANDED_NODES:,} values; the limit is {MAX_EXPANDED_NODES:,} "
                    "(an alias bomb?)",
                    file=source,
                )
            continue
        if key in sizes:
            continue
        if depth > MAX_DEPTH:
            raise InvalidParameterValue(
                f"{source}:{node.start_mark.line + 1}: YAML nested more than {MAX_DEPTH} "
                "levels deep",
                file=source,
            )
        open_nodes.add(key)
        stack.append((node, depth, True))
        for child in _children(node):
            if id(child) in open_nodes:
                raise InvalidParameterValue(
                    f"{source}:{child.start_mark.line + 1}: YAML alias refers to a value that "
                    "contains it (a recursive document)",
                    file=source,
                )
            if id(child) not in sizes:
                stack.append((child, depth + 1, False))


def compose(text: str, source: str) -> yaml.Node | None:
    """The checked node graph of one YAML document, every failure a line-located error."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise InvalidParameterValue(
            f"{source}: the document is {len(text) / 2**20:.1f} MB; YAML documents are limited "
            f"to {MAX_DOCUMENT_BYTES // 2**20} MB",
            file=source,
        )
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise InvalidParameterValue(
            f"{source}{line}: malformed YAML: {exc.problem or exc}", file=source
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidParameterValue(f"{source}: malformed YAML: {exc}", file=source) from None
    except RecursionError:
        raise InvalidParameterValue(
            f"{source}: YAML nested too deeply (over {MAX_DEPTH} levels)", file=source
        ) from None
    if root is not None:
        _check_budget(root, source)
    return root


def load(text: str, source: str = "<job>") -> Located:
    root = compose(text, source)
    lines: dict[Path, int] = {}
    data = {} if root is None else _convert(root, (), lines)
    return Located(data, source, lines)


def safe_load(text: str, source: str = "<yaml>") -> Any:
    """``yaml.safe_load`` under the same budgets as :func:`load`, for text from users."""
    root = compose(text, source)
    if root is None:
        return None
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(root)
    except yaml.YAMLError as exc:
        raise InvalidParameterValue(f"{source}: malformed YAML: {exc}", file=source) from None
    finally:
        loader.dispose()


def located(doc: Mapping[str, Any] | Located, source: str) -> Located:
    """A document parsed from a file keeps its lines; one built in code gets ``source`` only."""
    if isinstance(doc, Located):
        return doc
    return Located(dict(doc), source)


def suggest(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a near miss, else nothing."""
    close = difflib.get_close_matches(word, sorted(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_settings(loc: Located, keys: set[str], what: str) -> Mapping[str, Any]:
    """The document as a mapping whose every key is one of ``keys`` (else file:line:key)."""
    data = loc.data
    if not isinstance(data, Mapping):
        raise loc.error((), f"must be a mapping of {what} settings, got {type(data).__name__}")
    article = "an" if what[:1].lower() in "aeiou" else "a"
    for key in data:
        if key not in keys:
            raise loc.error(
                (str(key),),
                f"is not {article} {what} setting Lapis knows{suggest(str(key), keys)}; "
                f"allowed: {', '.join(sorted(keys))}",
            )
    return data


def section(
    loc: Located, key: str, raw: Any, allowed: set[str] | tuple[str, ...]
) -> dict[str, Any]:
    """A nested mapping (``request_settings:``) whose keys must be among ``allowed``."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise loc.error((key,), f"must be a mapping, got {type(raw).__name__}")
    for sub in raw:
        if sub not in allowed:
            raise loc.error(
                (key, str(sub)),
                f"is not a {'' if key == 'settings' else key + ' '}setting"
                f"{suggest(str(sub), allowed)}; "
                f"allowed: {', '.join(sorted(allowed))}",
            )
    return dict(raw)


def whole_number(loc: Located, path: Path, value: Any, low: int, high: int | None = None) -> int:
    """An integer (not a bool) from ``low`` to ``high`` (no upper bound when None)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise loc.error(path, f"must be a whole number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise loc.error(path, f"must be {bound}, got {value}")
    return int(value)


def string_map(loc: Located, key: str | tuple[str, ...], raw: Any) -> dict[str, str]:
    """``tags:`` / ``environment_variables:``: every value as text (None as empty)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        path = (key,) if isinstance(key, str) else key
        raise loc.error(path, f"must be a mapping of name: value, got {raw!r}")
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}
