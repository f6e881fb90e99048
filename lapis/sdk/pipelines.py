"""Pipeline jobs from the client: what the file names on this machine is read and uploaded
here — each component file's text and code, an inline step's code, a local data input —
so the server runs the pipeline without reading the client's disk. The whole file is
checked first (lapis/specs/pipeline.py), registered components as the server has them."""

from __future__ import annotations

from pathlib import Path
from typing import Any
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


def prepare_pipeline(http: LapisHTTP, text: str, source: str, base_dir: Path) -> dict[str, Any]:
    """The body ``POST /api/v1/jobs`` takes for a pipeline file."""
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
