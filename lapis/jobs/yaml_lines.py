"""YAML loading that remembers where every value came from.

A job file is written by hand, so every complaint about it should point at a
line: ``job.yml:7: key 'comand' is not allowed``. PyYAML's composer keeps a
mark on each node; this module turns the node tree into plain Python values
plus a map from key path to line number.
"""

from __future__ import annotations

import difflib
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


def load(text: str, source: str = "<job>") -> Located:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise InvalidParameterValue(
            f"{source}{line}: malformed YAML: {exc.problem or exc}", file=source
        ) from None
    lines: dict[Path, int] = {}
    data = {} if root is None else _convert(root, (), lines)
    return Located(data, source, lines)


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
                f"is not a {key} setting{suggest(str(sub), allowed)}; "
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
    return value


def string_map(loc: Located, key: str, raw: Any) -> dict[str, str]:
    """``tags:`` / ``environment_variables:``: every value as text (None as empty)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise loc.error((key,), f"must be a mapping of name: value, got {raw!r}")
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}
