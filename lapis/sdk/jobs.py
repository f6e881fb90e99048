"""Client side of jobs: prepare a submission, stream logs, download outputs.

The job file is parsed here first, so a mistake is reported with its line
before anything is uploaded; then the code folder is snapshotted and uploaded
(skipped when the server already holds that digest) and a conda file given as
a path is read, relative to the job file as Azure does. The server parses the
same text again and has the last word.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from lapis.artifacts.snapshot import pack, take_snapshot
from lapis.errors import InvalidParameterValue, ResourceDoesNotExist
from lapis.sdk.connection import LapisHTTP
from lapis.specs.job import parse_job
from lapis.specs.pipeline import is_pipeline
from lapis.specs.yaml_lines import load, read_text_file


def prepare_submission(
    http: LapisHTTP,
    text: str,
    source: str,
    base_dir: Path,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    base_dir = base_dir.resolve()
    if is_pipeline(text):  # its steps' files and code: lapis/sdk/pipelines.py
        from lapis.sdk.pipelines import prepare_pipeline

        return prepare_pipeline(http, text, source, base_dir, overrides)
    spec = parse_job(text, source, overrides, base_dir=base_dir)
    body: dict[str, Any] = {
        "yaml": text,
        "source": source,
        "overrides": overrides or [],
        "base_dir": str(base_dir),
    }
    overrides = [*(overrides or []), *_upload_inputs(http, spec, base_dir, source)]
    body["overrides"] = overrides
    body.update(code_and_environment(http, spec, base_dir, source))
    return body


def code_and_environment(http: LapisHTTP, spec: Any, base_dir: Path, source: str) -> dict[str, Any]:
    """What a job or a component brings from the client's disk: its code as an uploaded
    snapshot, and its environment's files (an environment file, a Docker build context, a
    conda file) — the server never reads the client's folder."""
    body: dict[str, Any] = {}
    if spec.code is not None:
        snap = take_snapshot(Path(spec.code))
        if not http.exists(f"/api/v1/snapshots/{snap.digest}"):
            http.request("PUT", f"/api/v1/snapshots/{snap.digest}", content=pack(snap))
        body["snapshot"] = {
            "digest": snap.digest,
            "git_commit": snap.git_commit,
            "git_dirty": snap.git_dirty,
            "files": len(snap.files),
            "bytes": snap.total_bytes,
        }
    build: dict[str, str] | None = None
    if spec.environment.kind == "file":
        body["environment_file"] = _environment_file(base_dir, str(spec.environment.name), source)
        build = body["environment_file"].get("build")
    elif spec.environment.build is not None:
        build = {**spec.environment.build, "path": str(base_dir / spec.environment.build["path"])}
    if build is not None:
        body["build_context"] = upload_build_context(http, build, source)
    conda = spec.environment.conda_file
    if spec.environment.kind == "inline" and isinstance(conda, str) and "\n" not in conda:
        path = (base_dir / conda).resolve()
        try:
            body["conda_file_text"] = read_text_file(path, "conda file")
        except OSError as exc:
            raise InvalidParameterValue(
                f"{source}: environment.conda_file: cannot read {path}: {exc.strerror}"
            ) from None
    return body


def _upload_inputs(http: LapisHTTP, spec: Any, base_dir: Path, source: str) -> list[str]:
    """Local input paths go to the workspace's default datastore first, as Azure's CLI
    does: the server never reads a path on its own disk for a client. Each becomes an
    override naming where it went (the same content is stored once)."""
    from lapis.sdk.data_upload import upload_local
    from lapis.specs.data_asset import parse_data_uri

    moved = []
    for name, item in spec.inputs.items():
        if not item.path or parse_data_uri(item.path).kind != "local":
            continue
        local = Path(item.path).expanduser()
        local = local if local.is_absolute() else base_dir / local
        try:
            uri = upload_local(http, local, item.type)
        except InvalidParameterValue as exc:
            raise InvalidParameterValue(f"{source}: inputs.{name}.path: {exc}") from None
        moved.append(f"inputs.{name}.path={uri}")
    return moved


def _environment_file(base_dir: Path, location: str, source: str) -> dict[str, Any]:
    """``environment: file:env.yml``: the environment document, its conda file read in."""
    path = (base_dir / location).resolve()
    try:
        located = load(read_text_file(path, "environment file"), str(path))
    except OSError as exc:
        raise InvalidParameterValue(
            f"{source}: environment: cannot read {path}: {exc.strerror}"
        ) from None
    doc = located.data
    if not isinstance(doc, dict):
        raise InvalidParameterValue(f"{path}: an environment file must be a mapping")
    if "build" in doc:  # a Docker context, relative to the environment file
        from lapis.specs.job import parse_environment

        ref = parse_environment(located, doc)
        assert ref.build is not None
        context = str((path.parent / ref.build["path"]).resolve())
        return {"build": {**ref.build, "path": context}, "source": str(path)}
    conda = doc.get("conda_file")
    if isinstance(conda, str) and "\n" not in conda:
        conda_path = (path.parent / conda).resolve()
        try:
            conda = read_text_file(conda_path, "conda file")
        except OSError as exc:
            raise InvalidParameterValue(
                f"{path}: conda_file: cannot read {conda_path}: {exc.strerror}"
            ) from None
    return {"image": doc.get("image"), "conda_file": conda, "source": str(path)}


def upload_build_context(http: LapisHTTP, build: dict[str, str], source: str) -> dict[str, str]:
    """Upload a Docker build context (like a code snapshot, once per content); its digest."""
    folder = Path(build["path"]).expanduser().resolve()
    dockerfile = build.get("dockerfile_path") or "Dockerfile"
    if not (folder / dockerfile).is_file():
        raise InvalidParameterValue(
            f"{source}: environment.build: no {dockerfile} in the context folder {folder}"
        )
    snap = take_snapshot(folder)
    if not http.exists(f"/api/v1/snapshots/{snap.digest}"):
        http.request("PUT", f"/api/v1/snapshots/{snap.digest}", content=pack(snap))
    return {"digest": snap.digest, "dockerfile_path": dockerfile}


def submit_file(http: LapisHTTP, path: Path, overrides: list[str] | None = None) -> dict[str, Any]:
    text = read_text_file(path, "job file")
    body = prepare_submission(http, text, str(path), path.parent, overrides)
    result: dict[str, Any] = http.post("/api/v1/jobs", body)
    return result


def stream(
    http: LapisHTTP,
    name: str,
    out: TextIO | None = None,
    on_status: Callable[[str, str | None], None] | None = None,
) -> dict[str, Any]:
    """Print a job's log as it is written and return the finished job (a pipeline's:
    its steps' statuses and logs, lapis/sdk/pipelines.py)."""
    out = out or sys.stdout
    if http.get(f"/api/v1/jobs/{name}").get("type") == "pipeline":
        from lapis.sdk.pipelines import follow

        return follow(http, name, out, on_status)
    last: tuple[str, str | None] | None = None
    cursor = ""
    while True:
        page = http.get(f"/api/v1/jobs/{name}/logs", cursor=cursor or None)
        cursor = page["cursor"]
        state = (page["status"], page.get("status_reason"))
        if on_status is not None and state != last:
            on_status(*state)
        last = state
        if page["data"]:
            out.write(page["data"])
            out.flush()
            continue
        if page["terminal"]:
            job: dict[str, Any] = http.get(f"/api/v1/jobs/{name}")
            return job
        time.sleep(0.25)


def _step_output(http: LapisHTTP, name: str, wanted: str) -> tuple[str, str] | None:
    """``<step>.<output>`` of a pipeline (or an output only one step has): the step's job
    and the output; None when ``name`` is not a pipeline. A name that fits nothing is an
    error listing every step's outputs."""
    if http.get(f"/api/v1/jobs/{quote(name, safe='')}").get("type") != "pipeline":
        return None
    outputs: dict[str, tuple[str, str]] = {}
    for step in http.get(f"/api/v1/jobs/{quote(name, safe='')}/steps")["steps"]:
        if not step.get("job"):
            continue
        for out in http.get(f"/api/v1/jobs/{quote(step['job'], safe='')}/files")["outputs"]:
            outputs[f"{step['name']}.{out}"] = (step["job"], out)
    if wanted in outputs:
        return outputs[wanted]
    only = [v for k, v in outputs.items() if k.split(".", 1)[1] == wanted]
    if len(only) == 1:
        return only[0]
    known = ", ".join(outputs) or "none yet (no step has run)"
    raise ResourceDoesNotExist(
        f"Pipeline {name} has no output '{wanted}'"
        + (" (more than one step has it: name the step)" if only else "")
        + f"; its steps' outputs: {known}"
    )


def download(
    http: LapisHTTP,
    name: str,
    target: Path,
    output_name: str | None = None,
    all_outputs: bool = True,
) -> list[Path]:
    """Azure's layout: ``artifacts/`` (everything) and ``named-outputs/<name>/`` — an
    output read from the datastore the job wrote it to."""
    listing = http.get(f"/api/v1/jobs/{name}/files")
    root = listing["root"]
    stored: dict[str, str] = listing.get("stored_outputs") or {}
    if output_name is not None and output_name not in listing["outputs"]:
        step = _step_output(http, name, output_name)  # a pipeline's step: step.output
        if step is not None:
            return download(http, step[0], target, step[1], all_outputs)
        known = ", ".join(listing["outputs"]) or "none"
        raise ResourceDoesNotExist(
            f"Job {name} has no output named '{output_name}'; its outputs: {known}"
        )
    wanted: list[tuple[str, Path]] = []  # (address to stream, where it goes)
    for item in listing["files"]:
        rel = str(item["path"])
        if rel.startswith("named-outputs/"):
            out_name = rel.split("/", 2)[1]
            if output_name is not None and out_name != output_name:
                continue
            dest = target / rel
        else:
            if output_name is not None or not all_outputs:
                continue
            dest = target / "artifacts" / rel
        wanted.append((f"/api/2.0/mlflow-artifacts/artifacts/{root}/{rel}", dest))
    for out_name in stored:
        if output_name is not None and out_name != output_name:
            continue
        base = f"/api/v1/jobs/{quote(name, safe='')}/outputs/{quote(out_name, safe='')}/files"
        for item in http.get(base)["files"]:
            rel = str(item["path"])
            if ".." in Path(rel).parts or Path(rel).is_absolute():
                continue  # never written outside the download folder
            dest = target / "named-outputs" / out_name / rel
            wanted.append((f"{base}/{quote(rel)}", dest))
    written: list[Path] = []
    for address, dest in wanted:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        with http.stream("GET", address) as resp, open(tmp, "wb") as fh:
            for chunk in resp.iter_bytes():
                fh.write(chunk)
        tmp.replace(dest)
        written.append(dest)
    return written
