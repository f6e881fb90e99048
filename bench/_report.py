"""Rows, ratios, targets and the printed table for bench/tracking.py.

A ratio is always oriented so that > 1 means Lapis is better: Lapis/MLflow
for rates (points/s, MiB/s), MLflow/Lapis for times, latencies and memory.
Targets come from issue 2's Benchmark section; each is either a minimum
ratio against MLflow's default server or an absolute bound on Lapis' figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BASELINE = "mlflow-default"
SERVER_ORDER = ("noop", "mlflow-default", "mlflow-w1", "lapis")
CEILING_TARGET = 0.8  # issue 10: single calls at >= 80 % of the no-op server's rate


@dataclass(frozen=True)
class Target:
    kind: str  # "ratio" (Lapis advantage >= value), "max" (Lapis < value), "min" (Lapis >= value)
    value: float

    def text(self, unit: str) -> str:
        if self.kind == "ratio":
            return f">= {self.value:g}x" if self.value != 1 else ">= MLflow"
        op = "<" if self.kind == "max" else ">="
        return f"{op} {fmt(self.value)} {unit}"

    def met(self, lapis: float | None, ratio: float | None) -> bool | None:
        if self.kind == "ratio":
            return None if ratio is None else ratio >= self.value
        if lapis is None:
            return None
        return lapis < self.value if self.kind == "max" else lapis >= self.value


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    target: Target | None = None


def rows(cfg: dict[str, Any]) -> list[Row]:
    n = cfg
    return [
        Row("single_pts_s", f"log_metric x{n['single_calls']:,} single calls", "points/s", True,
            Target("ratio", 5)),
        Row("single_p50_ms", "  single call p50 latency", "ms", False),
        Row("batch_pts_s", f"log_batch {n['batch_calls']}x{n['batch_size']:,} points", "points/s",
            True, Target("ratio", 3)),
        Row("procs_pts_s", f"{n['procs']} processes x log_batch {n['procs_calls']}x"
            f"{n['batch_size']:,}", "points/s", True, Target("ratio", 3)),
        Row("create_runs_s", f"create {n['search_runs']:,} runs (10 params, 10 metrics)", "s",
            False),
        Row("search_client_s", f"search_runs {n['search_runs']:,} runs (client, paged)", "s",
            False),
        Row("search_raw_s", f"runs/search {n['search_runs']:,} runs (raw HTTP)", "s", False,
            Target("ratio", 10)),
        Row("search_filtered_s", "filtered + sorted search (client)", "s", False),
        Row("history_s", f"get_metric_history {n['history_points']:,} points", "s", False,
            Target("ratio", 5)),
        Row("history_raw_s", "  the same as one raw HTTP GET", "s", False),
        Row("chart_ms", f"chart query (320 of {n['history_points']:,})", "ms", False,
            Target("max", 20)),
        Row("artifact_up_mib_s", f"artifact {n['artifact_mib']} MiB upload", "MiB/s", True,
            Target("ratio", 1)),
        Row("artifact_down_mib_s", f"artifact {n['artifact_mib']} MiB download", "MiB/s", True,
            Target("ratio", 1)),
        Row("idle_rss_mib", "idle memory (RSS of process tree)", "MiB", False, Target("ratio", 10)),
        Row("idle_processes", "processes at idle", "count", False),
        Row("sdk_pts_s", f"native SDK log_metric x{n['sdk_points']:,} (Lapis)", "points/s", True,
            Target("min", 200_000)),
    ]  # fmt: skip


def fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def ratio(row: Row, lapis: float | None, base: float | None) -> float | None:
    if lapis is None or base is None or lapis <= 0 or base <= 0:
        return None
    return lapis / base if row.higher_is_better else base / lapis


def build(cfg: dict[str, Any], servers: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per row: every server's figure, the ratio, the target and whether it's met."""
    out = []
    for row in rows(cfg):
        values = {name: _num(s.get(row.key)) for name, s in servers.items()}
        lapis, base = values.get("lapis"), values.get(BASELINE)
        r = ratio(row, lapis, base)
        out.append(
            {
                "key": row.key,
                "label": row.label,
                "unit": row.unit,
                "better": "higher" if row.higher_is_better else "lower",
                "values": values,
                "ratio": r,
                "target": row.target.text(row.unit) if row.target else None,
                "met": row.target.met(lapis, r) if row.target else None,
            }
        )
    return out


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _cell(server: dict[str, Any] | None, key: str, value: float | None) -> str:
    if server is None:
        return "-"
    if value is not None:
        return f"{value:,.0f}" if key == "idle_processes" else fmt(value)
    errors = server.get("errors", {})
    return "error" if STEP_OF.get(key) in errors or "_client" in errors else "n/a"


# Which client step produces which row, so a failed step shows "error" in its rows.
STEP_OF = {
    "single_pts_s": "single", "single_p50_ms": "single", "batch_pts_s": "batch",
    "procs_pts_s": "procs", "create_runs_s": "search", "search_client_s": "search",
    "search_raw_s": "search", "search_filtered_s": "search", "history_s": "history",
    "history_raw_s": "history",
    "chart_ms": "history", "artifact_up_mib_s": "artifact", "artifact_down_mib_s": "artifact",
    "sdk_pts_s": "sdk",
}  # fmt: skip


def render(records: list[dict[str, Any]], servers: dict[str, dict[str, Any]], title: str) -> None:
    """Print the table (Rich when it is installed, plain aligned columns otherwise)."""
    names = [n for n in SERVER_ORDER if n in servers]
    head = ["Measurement", "Unit"]
    head += [servers[n]["label"] + (" (baseline)" if servers[n].get("from_baseline") else "")
             for n in names]  # fmt: skip
    head += ["Lapis vs default (x, >1 = Lapis better)", "Target", "Met"]
    body = []
    for rec in records:
        cells = [rec["label"], rec["unit"]]
        cells += [_cell(servers[n], rec["key"], rec["values"].get(n)) for n in names]
        met = {True: "yes", False: "NO", None: "-" if rec["target"] is None else "n/a"}[rec["met"]]
        cells += [fmt(rec["ratio"]) if rec["ratio"] is not None else "-", rec["target"] or "-", met]
        body.append(cells)
    try:
        _rich(title, head, body)
    except ImportError:
        print(_plain(title, head, body))


def _rich(title: str, head: list[str], body: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, h in enumerate(head):
        table.add_column(h, justify="left" if i < 2 else "right", overflow="fold")
    for cells in body:
        style = {"yes": "green", "NO": "red"}.get(cells[-1])
        table.add_row(*cells[:-1], f"[{style}]{cells[-1]}[/]" if style else cells[-1])
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)


def _plain(title: str, head: list[str], body: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = [title]
    for r in [head, *body]:
        pairs = enumerate(zip(r, widths, strict=True))
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in pairs]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def ceiling(
    servers: dict[str, dict[str, Any]], paired: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """Lapis' single-call rate as a share of the do-nothing server's, same client, same run:
    from the side-by-side rounds when they ran, else from the two servers' own steps."""
    if paired and "share" in paired:
        share = paired["share"]
        met = "met" if share >= CEILING_TARGET else "NOT met"
        spread = ", ".join(f"{s:.0%}" for s in paired["shares"])
        text = (
            f"single log_metric, side by side ({paired['rounds']} alternating rounds of "
            f"{paired['calls_per_round']:,} calls): Lapis {paired['lapis']:,.0f} calls/s vs no-op "
            f"{paired['noop']:,.0f} calls/s (medians); median share {share:.0%} of the ceiling "
            f"(rounds: {spread}; target >= {CEILING_TARGET:.0%}: {met}); Lapis adds "
            f"{paired['lapis_p50_ms'] - paired['noop_p50_ms']:.2f} ms per call (p50)"
        )
        return {**paired, "met": share >= CEILING_TARGET, "text": text}
    if paired and "error" in paired:
        print(f"side-by-side ceiling rounds failed: {paired['error']}", flush=True)
    lapis = _num(servers.get("lapis", {}).get("single_pts_s"))
    noop = _num(servers.get("noop", {}).get("single_pts_s"))
    if lapis is None or noop is None or noop <= 0:
        return None
    share = lapis / noop
    lat = _num(servers["lapis"].get("single_p50_ms"))
    base = _num(servers["noop"].get("single_p50_ms"))
    spent = f"; Lapis adds {lat - base:.2f} ms per call (p50)" if lat and base else ""
    met = "met" if share >= CEILING_TARGET else "NOT met"
    text = (
        f"single log_metric: Lapis {lapis:,.0f} calls/s = {share:.0%} of the no-op ceiling "
        f"{noop:,.0f} calls/s (target >= {CEILING_TARGET:.0%}: {met}){spent}"
    )
    return {"lapis": lapis, "noop": noop, "share": share, "met": share >= CEILING_TARGET,
            "text": text}  # fmt: skip
