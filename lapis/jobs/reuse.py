"""Step reuse: a deterministic pipeline step whose work would be the same as an earlier
job's is not run again; its job is recorded Completed, pointing at that job's outputs.

The rule (docs/pipelines.md says it to users). Two steps do the same work when all of
these are equal, as the server resolved them at submission:
- the component (name and version, or the inline step's name) and its command;
- the environment's content digest (a registered name resolves to its version's digest;
  an inline conda file to its text's) and the code snapshot's digest;
- every input: a literal's value; data by where its bytes are — the datastore and path
  the data layer resolved it to, a data asset's version, a URL. An upload of local data
  is content-addressed (``LocalUpload/<hash>/``), so the same files are the same input;
  a step that reads another step's output reads where that output was written, which for
  a reused step is the original job's, so reuse carries down the graph;
- its outputs' declared settings (type, mode, path, asset name), environment variables,
  instance count and distribution.
The compute is not part of it: the same code on the same data gives the same result on
any node. A datastore path whose files were changed in place is still "the same input"
— as on Azure; register a data asset version, or set ``force_rerun``.

Nothing here decides to look: ``settings.force_rerun`` and a component's
``is_deterministic: false`` make the runner record no key or skip the look-up
(lapis/jobs/pipelines.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from lapis.entities.jobs import Job

KEY_VERSION = 1  # bump when what goes into a key changes: old keys then never match


def reuse_key(stored: Mapping[str, Any], component: str) -> str:
    """The hex sha256 of what makes this prepared job's work the same as another's."""
    env = stored.get("environment") or {}
    code = stored.get("code") or {}
    what = {
        "v": KEY_VERSION,
        "component": component,
        "command": stored.get("command"),
        "environment": env.get("digest") or env.get("spec") or env.get("label"),
        "code": code.get("digest"),
        "inputs": {k: _input(v) for k, v in (stored.get("inputs") or {}).items()},
        "outputs": {k: _output(v) for k, v in (stored.get("outputs") or {}).items()},
        "environment_variables": stored.get("environment_variables") or {},
        "instance_count": stored.get("instance_count"),
        "distribution": stored.get("distribution"),
    }
    return hashlib.sha256(orjson.dumps(what, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _input(item: Mapping[str, Any]) -> dict[str, Any]:
    if "value" in item:
        return {"type": item.get("type"), "value": item["value"]}
    out = {k: item.get(k) for k in ("type", "mode", "asset", "url", "source") if item.get(k)}
    if "source" not in out and "url" not in out:
        out["path"] = item.get("path")  # nothing resolved it further: the path is the data
    return out


def _output(item: Mapping[str, Any]) -> dict[str, Any]:
    # where a default output went names the job that wrote it: only what was asked counts
    return {k: item.get(k) for k in ("type", "mode", "path", "name") if item.get(k)}


def reused_reason(origin: Job, component: str) -> str:
    """What ``lapis job show`` and the studio say about a reused step."""
    tags = origin.spec.get("tags") or {}
    where = ""
    if tags.get("pipeline") and tags.get("pipeline_step"):
        where = f" (step {tags['pipeline_step']} of pipeline {tags['pipeline']})"
    return (
        f"reused from job {origin.name}{where}: same component {component}, "
        "same environment, code and inputs"
    )
