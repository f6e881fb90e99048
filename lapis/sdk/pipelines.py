"""Pipeline jobs from the client: what the file names on this machine is read and uploaded
here — each component file's text and code, an inline step's code, a local data input —
so the server runs the pipeline without reading the client's disk. The whole file is
checked first (lapis/specs/pipeline.py), registered components as the server has them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from lapis.sdk.connection import LapisHTTP
from lapis.specs.component import ComponentInput, ComponentSpec
from lapis.specs.job import JobOutput
from lapis.specs.pipeline import parse_pipeline
from lapis.specs.yaml_lines import read_text_file


def _registered(http: LapisHTTP) -> Any:
    """Registered components as the server describes them: enough to check the wiring."""

    def resolve(name: str, version: str | None, label: str | None) -> ComponentSpec:
        which = quote(version or label or "latest", safe="")
        raw = http.get(f"/api/v1/components/{quote(name, safe='')}/versions/{which}")
        inputs = {
            i["name"]: ComponentInput(type=i["type"], default=i.get("default"),
                                      optional=bool(i.get("optional")), min=i.get("min"),
                                      max=i.get("max"), enum=i.get("enum"))
            for i in raw["inputs"]
        }  # fmt: skip
        outputs = {o["name"]: JobOutput(type=o["type"]) for o in raw["outputs"]}
        return ComponentSpec(name=raw["name"], version=raw["version"], command=raw["command"],
                             inputs=inputs, outputs=outputs,
                             is_deterministic=raw["is_deterministic"])  # fmt: skip

    return resolve


def prepare_pipeline(
    http: LapisHTTP, text: str, source: str, base_dir: Path, overrides: list[str] | None = None
) -> dict[str, Any]:
    """The body ``POST /api/v1/jobs`` takes for a pipeline file (``overrides``: ``--set``,
    applied here, so a local path set on the command line is uploaded too)."""
    if overrides:
        import yaml

        from lapis.specs.job import apply_overrides
        from lapis.specs.yaml_lines import load

        data = load(text, source).data
        if isinstance(data, dict):
            apply_overrides(data, overrides)
            text = yaml.safe_dump(data, sort_keys=False)
    from lapis.sdk.data_upload import upload_local
    from lapis.sdk.jobs import code_and_environment
    from lapis.specs.data_asset import parse_data_uri

    plan = parse_pipeline(text, source, base_dir, _registered(http))
    components: dict[str, dict[str, Any]] = {}
    inline: dict[str, dict[str, Any]] = {}
    for name, step in plan.steps.items():
        ref = step.component_ref
        if ref == "inline":
            inline[name] = code_and_environment(http, step.component, base_dir, source)
        elif not ref.startswith("azureml:") and ref not in components:
            path = (base_dir / ref.removeprefix("file:").strip()).resolve()
            components[ref] = {
                "yaml": read_text_file(path, "component file"),
                "source": str(path),
                **code_and_environment(http, step.component, path.parent, str(path)),
            }
    input_paths = {}
    for name, item in plan.inputs.items():
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            where = item["path"]
            if parse_data_uri(where).kind == "local":
                local = Path(where).expanduser()
                local = local if local.is_absolute() else base_dir / local
                input_paths[name] = upload_local(http, local, str(item.get("type", "uri_folder")))
    return {"yaml": text, "source": source, "components": components, "inline": inline,
            "input_paths": input_paths}  # fmt: skip


ENDED = ("Completed", "Failed", "Canceled")


def _say(out: TextIO, shown: dict[str, str], step: str, said: str) -> None:
    if shown.get(step) != said:
        out.write(f"[{step}] {said}\n")
        shown[step] = said


def follow(
    http: LapisHTTP,
    name: str,
    out: TextIO,
    on_status: Callable[[str, str | None], None] | None = None,
) -> dict[str, Any]:
    """``lapis job stream`` of a pipeline: each step's status as it changes
    (``[train] Running``, ``[score] Completed reused from …``) and every step's log as it
    is written, line by line, prefixed with the step (``train | epoch 3``), until the
    pipeline has ended and every log is read; the final pipeline job."""
    cursors: dict[str, str] = {}
    carry: dict[str, str] = {}  # a step's last line until its end arrives
    shown: dict[str, str] = {}
    drained: set[str] = set()
    last: tuple[str, str | None] | None = None
    while True:
        parent: dict[str, Any] = http.get(f"/api/v1/jobs/{quote(name, safe='')}")
        state = (parent["status"], parent.get("status_reason"))
        if on_status is not None and state != last:
            on_status(*state)
        last = state
        ended = bool(parent.get("end_time"))  # read before the steps: no step ends after
        wrote = False
        for step in http.get(f"/api/v1/jobs/{quote(name, safe='')}/steps")["steps"]:
            said = step["status"]
            if step.get("reused_from"):
                said += f" reused from {step['reused_from']}"
            elif step["status"] in ("Failed", "Canceled") and step.get("reason"):
                said += f": {step['reason']}"
            job = step.get("job")
            live = bool(job) and job not in drained and not step.get("reused_from")
            # a step's start is said before its first log line, its end after its last
            if not (live and step["status"] in ENDED):
                _say(out, shown, step["name"], said)
            if not live:
                continue
            page = http.get(f"/api/v1/jobs/{quote(str(job), safe='')}/logs",
                            cursor=cursors.get(str(job)))  # fmt: skip
            cursors[str(job)] = page["cursor"]
            text = carry.pop(str(job), "") + page["data"]
            wrote = wrote or bool(page["data"])
            lines = text.split("\n")
            rest = lines.pop()  # "" when the text ended a line; else a line still being written
            if page["terminal"] and not page["data"]:
                drained.add(str(job))
                lines, rest = ([*lines, rest] if rest else lines), ""
            if rest:
                carry[str(job)] = rest
            for line in lines:
                out.write(f"{step['name']} | {line}\n")
            if str(job) in drained:
                _say(out, shown, step["name"], said)
        out.flush()
        if (
            ended
            and not wrote
            and all(
                s.get("reused_from") or not s.get("job") or s["job"] in drained
                for s in http.get(f"/api/v1/jobs/{quote(name, safe='')}/steps")["steps"]
            )
        ):
            return parent
        if not wrote:
            time.sleep(0.25)
