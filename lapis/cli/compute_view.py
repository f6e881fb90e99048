"""``lapis compute show``'s text view: state and why, size and cores, idle shutdown and
what keeps an instance awake, its applications (JupyterLab, terminal, SSH), its nodes,
and the jobs on it."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from lapis.cli._common import console, fmt_time

STATE_STYLE = {
    "Running": "green",
    "Creating": "blue",
    "Starting": "blue",
    "Restarting": "blue",
    "Stopping": "yellow",
    "Stopped": "dim",
    "Failed": "red",
}


def _state(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, ""))


def _jobs_table(title: str, jobs: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("Name", "Display name", "Status", "Created", "Started", "Reason"):
        table.add_column(col)
    for j in jobs:
        table.add_row(
            j["name"],
            j.get("display_name") or "",
            j["status"],
            fmt_time(j.get("created_at")),
            fmt_time(j.get("start_time")),
            j.get("status_reason") or "",
        )
    return table


def render(c: dict[str, Any], server: str) -> None:
    """Print one compute (``server``: the URL its applications' paths hang off)."""
    out = console()
    rows: list[tuple[str, Any]] = [
        ("Name", Text(c["name"], style="bold")),
        ("Type", c["type"]),
        ("State", Text.assemble(_state(c["state"]), f"  {c.get('state_reason') or ''}")),
        ("Since", fmt_time(c.get("state_changed_at"))),
        ("Size", f"{c.get('size') or '-'} ({c.get('family') or 'this host'})"),
        ("Cores / memory", f"{c['cores']} cores, {c['memory_gib']:g} GiB, {c['gpus']} GPUs"),
        ("CPU set", ",".join(map(str, c["cpu_set"])) or "-"),
        ("Job slots", str(c["slots"])),
    ]
    if c.get("max_instances") is not None:
        rows.append(
            (
                "Scale",
                f"{c['min_instances']}..{c['max_instances']} nodes ({c['tier']}); nodes above "
                f"the minimum go after {c['idle_time_before_scale_down']} s without jobs",
            )
        )
        rows.append(("Nodes run", c.get("provider") or "local"))
    if c.get("description"):
        rows.append(("Description", c["description"]))
    if c.get("tags"):
        rows.append(("Tags", ", ".join(f"{k}={v}" for k, v in c["tags"].items())))
    idle = c.get("idle_shutdown")
    rows.append(("Idle shutdown", idle["note"] if idle else "off"))
    if c.get("state") == "Running":
        rows.append(("Awake because", "; ".join(c.get("awake") or []) or "nothing: idle"))
    nxt = c.get("next_schedule")
    rows.append(("Next schedule", f"{nxt['note']} on {fmt_time(nxt['time'])}" if nxt else "none"))
    if c.get("created_by"):
        rows.append(("Created", f"{fmt_time(c.get('created_at'))} by {c['created_by']}"))
    if c.get("owner"):
        rows.append(("User", f"{c['owner']} (only they can run jobs and open its tools)"))
    for app_ in c.get("applications") or []:
        where = app_.get("command") or (f"{server}{app_['url']}" if app_.get("url") else "")
        rows.append(("Application", Text.assemble(f"{app_['name']}  ", _state(app_["status"]),
                                                  f"  {where}")))  # fmt: skip
    for node in c.get("nodes") or []:
        detail = f"  {node['detail']}" if node.get("detail") else ""
        cpu = node.get("cpu_percent")
        detail += f"  CPU {cpu:.0f}%" if cpu is not None else ""
        rows.append(("Node", Text.assemble(node["name"], "  ", _state(node["state"]), detail)))
    for feature, reason in sorted((c.get("unsupported") or {}).items()):
        rows.append(("Cannot run", f"{feature.replace('_', '-')}: {reason}"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan")
    grid.add_column()
    for label, value in rows:
        grid.add_row(label, value)
    out.print(grid)
    jobs = c.get("jobs") or {}
    for title, key in (("Running jobs", "running"), ("Queued jobs", "queued")):
        items = jobs.get(key) or []
        if items:
            out.print(_jobs_table(title, items))
        else:
            out.print(f"{title}: none")
