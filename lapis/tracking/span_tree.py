"""A trace's spans (``traces.json``, MLflow's OpenTelemetry-shaped dicts) as a tree the
studio draws: each span's depth, its start and length against the whole trace (for a
waterfall bar), its type and status, and its inputs and outputs as readable JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

_SHOWN_ELSEWHERE = {
    "mlflow.spanInputs",
    "mlflow.spanOutputs",
    "mlflow.spanType",
    "mlflow.traceRequestId",
    "mlflow.spanFunctionName",
    "mlflow.spanLogLevel",
}
MAX_TEXT = 20_000  # characters of one input or output shown; the rest is cut with a note


@dataclass
class SpanNode:
    span_id: str
    name: str
    span_type: str
    status: str
    message: str
    depth: int
    start_ms: float  # after the trace's first span started
    duration_ms: float
    offset_pct: float  # of the whole trace, for the waterfall bar
    width_pct: float
    inputs: str | None
    outputs: str | None
    attributes: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    children: list[SpanNode] = field(default_factory=list)


def _decoded(raw: object) -> Any:
    """Span attributes are JSON text (MLflow serialises each value)."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _pretty(raw: object) -> str | None:
    if raw is None:
        return None
    value = _decoded(raw)
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + f"\n… ({len(text) - MAX_TEXT} more characters)"
    return text


def build(spans: list[dict[str, Any]]) -> list[SpanNode]:
    """Root spans (usually one) with their children, in start order; orphans become roots."""
    if not spans:
        return []
    starts = [int(s.get("start_time_unix_nano") or 0) for s in spans]
    ends = [int(s.get("end_time_unix_nano") or s.get("start_time_unix_nano") or 0) for s in spans]
    t0, t1 = min(starts), max(ends)
    total = max(t1 - t0, 1)
    nodes: dict[str, SpanNode] = {}
    parents: dict[str, str | None] = {}
    for s, start, end in zip(spans, starts, ends, strict=True):
        attrs = s.get("attributes") or {}
        status = s.get("status") or {}
        span_id = str(s.get("span_id") or id(s))
        nodes[span_id] = SpanNode(
            span_id=span_id,
            name=str(s.get("name") or "(unnamed)"),
            span_type=str(_decoded(attrs.get("mlflow.spanType")) or "UNKNOWN"),
            status=str(status.get("code") or "").replace("STATUS_CODE_", "") or "UNSET",
            message=str(status.get("message") or ""),
            depth=0,
            start_ms=(start - t0) / 1e6,
            duration_ms=max(end - start, 0) / 1e6,
            offset_pct=100 * (start - t0) / total,
            width_pct=max(100 * (end - start) / total, 0.5),
            inputs=_pretty(attrs.get("mlflow.spanInputs")),
            outputs=_pretty(attrs.get("mlflow.spanOutputs")),
            attributes={
                str(k): str(_decoded(v)) for k, v in attrs.items() if k not in _SHOWN_ELSEWHERE
            },
            events=[e for e in s.get("events") or [] if isinstance(e, dict)],
        )
        parent = s.get("parent_span_id") or s.get("parent_id")
        parents[span_id] = str(parent) if parent else None
    roots: list[SpanNode] = []
    for span_id, node in nodes.items():
        parent = parents[span_id]
        if parent is not None and parent in nodes and parent != span_id:
            nodes[parent].children.append(node)
        else:
            roots.append(node)

    def settle(node: SpanNode, depth: int) -> None:
        node.depth = depth
        node.children.sort(key=lambda n: n.start_ms)
        for child in node.children:
            settle(child, depth + 1)

    roots.sort(key=lambda n: n.start_ms)
    for root in roots:
        settle(root, 0)
    return roots


def flatten(roots: list[SpanNode]) -> list[SpanNode]:
    """Depth-first order: the order the waterfall lists them in."""
    out: list[SpanNode] = []

    def walk(node: SpanNode) -> None:
        out.append(node)
        for child in node.children:
            walk(child)

    for root in roots:
        walk(root)
    return out
