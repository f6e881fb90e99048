"""The lineage graph of a model version, laid out on the server as an inline SVG.

The chain is small and always the same shape — at most one job (with its
inputs and environment), the version itself, and the deployments serving it —
so a fixed three-column layout is clearer than a general graph layout and
needs no script: this module only computes boxes and arrows (coordinates and
the lines of text in each box); ``templates/models/_lineage.html`` draws them,
autoescaped like every template, so names arrive in the SVG as text. Long
names are shortened in the box and kept whole in the box's ``<title>``
tooltip; every box that stands for something with a page is a link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from lapis.api.models import Lineage, LineageEnvironment, ModelDetail

BOX_W = 250
LINE_H = 18
PAD = 10
GAP_X = 70
GAP_Y = 16
MAX_CHARS = 34
MAX_INPUTS = 4


@dataclass
class Box:
    kind: str  # job, run, model, deployment, none
    x: int
    y: int
    lines: list[str]
    title: str
    href: str | None = None
    tone: str = "off"
    w: int = BOX_W
    h: int = 0

    def __post_init__(self) -> None:
        self.h = PAD * 2 + LINE_H * len(self.lines)

    @property
    def mid_y(self) -> int:
        return self.y + self.h // 2


@dataclass
class Graph:
    width: int
    height: int
    boxes: list[Box] = field(default_factory=list)
    edges: list[str] = field(default_factory=list)  # SVG path data


def short(text: object, limit: int = MAX_CHARS) -> str:
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _arrow(a: Box, b: Box) -> str:
    """A gentle S-curve from ``a``'s right edge to ``b``'s left edge."""
    x1, y1, x2, y2 = a.x + a.w, a.mid_y, b.x - 4, b.mid_y
    mid = (x1 + x2) // 2
    return f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"


def _job_box(lineage: Lineage, x: int) -> Box | None:
    job = lineage.job
    inputs = lineage.inputs
    env = lineage.environment or LineageEnvironment(name=None, digest=None)
    if job:
        lines = [f"job {short(job.name, MAX_CHARS - 4)}", f"status {job.status or '-'}"]
        title = f"Job {job.name} ({job.status}, compute {job.compute or '-'})"
        href: str | None = f"/jobs/{quote(str(job.name), safe='')}"
        kind, tone = "job", "job"
    elif lineage.run_id:
        run_id = lineage.run_id
        lines = [f"run {run_id[:12]}…", "registered from a run"]
        title = f"Run {run_id}"
        href, kind, tone = f"/runs/{quote(run_id, safe='')}", "run", "job"
    else:
        return None
    shown = list(inputs.items())[:MAX_INPUTS]
    for key, value in shown:
        given = value.get("path") or value.get("value") if isinstance(value, dict) else value
        lines.append(short(f"in {key} = {given}"))
        title += f"\ninput {key} = {given}"
    if len(inputs) > MAX_INPUTS:
        lines.append(f"… {len(inputs) - MAX_INPUTS} more inputs")
    if env.name or env.digest:
        lines.append(short(f"env {env.name or '-'}"))
        title += f"\nenvironment {env.name or '-'} {env.digest or ''}".rstrip()
    return Box(kind, x, 0, lines, title, href, tone)


def layout(model: ModelDetail) -> Graph:
    """Boxes and arrows for ``job → model version → deployments``."""
    lineage = model.lineage
    col = [PAD, PAD + BOX_W + GAP_X, PAD + 2 * (BOX_W + GAP_X)]
    job = _job_box(lineage, col[0])
    if job is None:  # nothing upstream (an upload): start with the model
        col = [PAD, PAD, PAD + BOX_W + GAP_X]
    mv = Box(
        "model",
        col[1],
        0,
        [short(f"model {model.name}"), f"version {model.version}", str(model.status)],
        f"Model {model.name} version {model.version}",
        None,
        "model",
    )
    deps = [
        Box(
            "deployment",
            col[2],
            0,
            [
                short(f"endpoint {d.endpoint}"),
                short(f"deployment {d.deployment}"),
                str(d.provisioning_state or ""),
            ],
            f"Endpoint {d.endpoint}, deployment {d.deployment}",
            f"/endpoints/{quote(d.endpoint, safe='')}",
            "deployment",
        )
        for d in lineage.deployments
    ]
    if not deps:
        deps = [Box("none", col[2], 0, ["no deployment", "serves this version"], "No deployments")]
    # Stack the deployments, then centre the other two columns on that stack.
    y = PAD
    for box in deps:
        box.y = y
        y += box.h + GAP_Y
    stack = y - GAP_Y - PAD
    tallest = max(stack, mv.h, job.h if job else 0)
    offset = PAD + (tallest - stack) // 2
    for box in deps:
        box.y += offset - PAD
    mv.y = PAD + (tallest - mv.h) // 2
    boxes = [mv, *deps]
    edges = [_arrow(mv, d) for d in deps if d.kind == "deployment"]
    if job is not None:
        job.y = PAD + (tallest - job.h) // 2
        boxes.insert(0, job)
        edges.insert(0, _arrow(job, mv))
    return Graph(width=col[2] + BOX_W + PAD, height=tallest + 2 * PAD, boxes=boxes, edges=edges)
