"""A job submission's body (``POST /api/v1/jobs``) read into a typed object, each bad
field refused with a readable reason before anything is parsed or stored."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from lapis.api.jobs import SnapshotRef, SubmitJob
from lapis.artifacts.snapshot import check_digest
from lapis.errors import InvalidParameterValue


def parse_submission(request: Mapping[str, Any]) -> SubmitJob:
    """A submission body as a typed object, refused field by field with a readable reason."""
    text = request.get("yaml")
    if not isinstance(text, str) or not text.strip():
        raise InvalidParameterValue("'yaml' must hold the job file's text", field="yaml")
    overrides = request.get("overrides") or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise InvalidParameterValue(
            "'overrides' must be a list of key=value strings", field="overrides"
        )
    snapshot = request.get("snapshot")
    if snapshot is not None and not (isinstance(snapshot, dict) and snapshot.get("digest")):
        snapshot = None  # reported with the job's `code:` line when the job has code
    if snapshot is not None:
        check_digest(snapshot["digest"])  # never a path, whatever its type
    env_file = request.get("environment_file")
    conda = request.get("conda_file_text")
    build = request.get("build_context")
    if build is not None:
        if not (isinstance(build, dict) and isinstance(build.get("digest"), str)):
            raise InvalidParameterValue(
                "'build_context' must be {digest, dockerfile_path}", field="build_context"
            )
        check_digest(build["digest"])
        build = {k: str(v) for k, v in build.items() if k in ("digest", "dockerfile_path")}
    try:
        return SubmitJob(
            yaml=text,
            source=str(request.get("source") or "<job>"),
            overrides=overrides,
            base_dir=str(request["base_dir"]) if request.get("base_dir") else None,
            snapshot=SnapshotRef.model_validate(snapshot) if snapshot else None,
            environment_file=env_file if isinstance(env_file, dict) else None,
            conda_file_text=conda if isinstance(conda, str) else None,
            build_context=build,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "snapshot." + ".".join(str(p) for p in first["loc"])
        raise InvalidParameterValue(f"'{where}': {first['msg']}", field=where) from None
