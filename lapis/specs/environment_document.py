"""Environment documents: Azure's environment YAML checked and reduced to a spec.

Kept apart from the service so the CLI and SDK can check a file locally (with
its line numbers) using exactly the rules the server applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from lapis.errors import InvalidParameterValue
from lapis.specs.environment import EnvironmentSpec, from_conda, from_requirements
from lapis.specs.yaml_lines import Located, load, read_text_file, safe_load, suggest

CURATED_DIR = Path(__file__).parent.parent / "environments" / "curated"
ALIASES_FILE = "azure-aliases.yml"
BUILD_STATUSES = ("Building", "Succeeded", "Failed")
DOC_KEYS = {
    "$schema",
    "name",
    "version",
    "description",
    "tags",
    "image",
    "conda_file",
    "pip",
    "python",
    "os_type",
    "build",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}$")
_VERSION = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
# A registered `build:` environment (a Docker context); jobs take one inline or by file:.
BUILD_NEEDS_DOCKER = (
    "is a Docker build context: registering one is not supported yet; name it in the job "
    "instead (environment: {build: {path: …}} or environment: file:env.yml), which runs "
    "the job in a container where the server has a Docker engine, or give 'conda_file' "
    "(or 'pip') and optionally 'image' to register a uv-built environment"
)


@dataclass(frozen=True)
class Definition:
    """A checked environment document."""

    name: str
    version: str | None
    description: str | None
    image: str | None
    conda_text: str | None
    spec: EnvironmentSpec | None  # None: image only
    tags: dict[str, str]


# --- document parsing -------------------------------------------------------------
def read_conda(
    doc: Located, raw: Any, hint: str = "`lapis environment create -f` does this for you"
) -> tuple[str, dict[str, Any]]:
    """The conda file as text and as a mapping; a path here means nobody inlined it."""
    path = ("conda_file",)
    if isinstance(raw, dict):
        return yaml.safe_dump(raw, sort_keys=False), raw
    if isinstance(raw, str):
        try:
            data = safe_load(raw, "conda_file")
        except InvalidParameterValue as exc:
            raise doc.error(path, f"is not valid conda YAML: {exc.message}") from None
        if isinstance(data, dict):
            return raw, data
        raise doc.error(
            path,
            f"'{raw.strip()[:80]}' looks like a file path; the server cannot read your files, "
            f"so inline its contents ({hint})",
        )
    raise doc.error(path, f"must be a mapping or a file path, got {type(raw).__name__}")


def _python(doc: Located, raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, float):
        raise doc.error(("python",), f'must be a quoted string such as "3.11" (got {raw!r})')
    return from_requirements([], python=str(raw)).python


def _tags(doc: Located, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise doc.error(("tags",), "must be a mapping of tag names to values")
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


def parse_definition(doc: Located) -> Definition:
    """Check an environment document; every complaint names the file, line and key."""
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error((), "an environment document must be a mapping")
    for key in data:
        if key not in DOC_KEYS:
            raise doc.error((key,), f"is not a valid key of an environment{suggest(key, DOC_KEYS)}")
    if "build" in data:
        raise doc.error(("build",), BUILD_NEEDS_DOCKER)
    if str(data.get("os_type", "linux")).lower() != "linux":
        raise doc.error(("os_type",), "only 'linux' environments are supported")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise doc.error(
            ("name",),
            "is required: letters, digits, '-', '_' and '.', starting with a letter or digit",
        )
    version = data.get("version")
    if version is not None:
        version = str(version)
        if not _VERSION.match(version) or version == "latest":
            raise doc.error(
                ("version",), "must be letters, digits, '-', '_' or '.' ('latest' is a label)"
            )
    image = data.get("image")
    if image is not None and not isinstance(image, str):
        raise doc.error(("image",), "must be an image reference such as python:3.11-slim")
    conda_text: str | None = None
    spec: EnvironmentSpec | None = None
    python = _python(doc, data.get("python"))
    pip = data.get("pip")
    if pip is not None and (
        not isinstance(pip, list) or not all(isinstance(p, str | int | float) for p in pip)
    ):
        raise doc.error(("pip",), "must be a list of requirements such as 'scikit-learn>=1.5'")
    if "conda_file" in data:
        conda_text, conda = read_conda(doc, data["conda_file"])
        spec = from_conda(conda, source=doc.where(("conda_file",)) + " conda_file")
    if pip is not None or python is not None or spec is not None:
        base = spec or EnvironmentSpec()
        if python and base.python and python != base.python:
            raise doc.error(
                ("python",), f"says {python} but the conda file asks for python={base.python}"
            )
        extra = from_requirements([str(p) for p in pip or []]).requirements
        spec = EnvironmentSpec(
            python=python or base.python,
            requirements=base.requirements + extra,
            conda_only=base.conda_only,
            image=image,
            channels=base.channels,
        )
    if spec is None and image is None:
        raise doc.error((), "an environment needs 'image' and/or 'conda_file' (or 'pip')")
    description = data.get("description")
    return Definition(
        name=name,
        version=version,
        description=None if description is None else str(description),
        image=image,
        conda_text=conda_text,
        spec=spec,
        tags=_tags(doc, data.get("tags")),
    )


def failure_reason(log_text: str) -> str:
    """One line saying why a build failed, taken from uv's output in the build log."""
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith(("error:", "\u00d7")):  # uv: plain "error:", fancy U+00D7
            parts = [line.split(":", 1)[1].strip() if line.startswith("error:") else line[1:]]
            for follow in lines[i + 1 :]:
                if not follow.startswith(("cause:", "╰─▶", "Caused by:")):
                    break
                parts.append(follow.split(":", 1)[1] if ":" in follow[:10] else follow[3:])
            return ": ".join(p.strip() for p in parts)
    return lines[-1] if lines else "unknown error (the build log is empty)"


# --- the service --------------------------------------------------------------------
def load_curated(locked: bool = True) -> list[tuple[Definition, Path]]:
    """The environments shipped in ``curated/*.yml``, checked like users' own; with
    ``locked``, each installs its ``<name>.lock`` (every package pinned) rather than the
    YAML's top-level packages, which the YAML keeps for people to read."""
    out = []
    for path in sorted(CURATED_DIR.glob("*.yml")):
        if path.name == ALIASES_FILE:
            continue
        d = parse_definition(load(read_text_file(path, "environment file"), str(path.name)))
        lock = path.with_suffix(".lock")
        if locked and d.spec is not None and lock.is_file():
            pinned = from_requirements(lock.read_text()).requirements
            d = replace(d, spec=replace(d.spec, requirements=pinned))
        out.append((d, path))
    return out


@dataclass(frozen=True)
class Alias:
    """An Azure ML curated environment name (pattern) and the Lapis one that stands in."""

    pattern: re.Pattern[str]
    use: str | None  # None: no stand-in here; ``note`` says what to do instead
    example: str
    note: str | None


def load_aliases() -> list[Alias]:
    """``curated/azure-aliases.yml``: Azure's curated names, first match wins."""
    raw = safe_load(read_text_file(CURATED_DIR / ALIASES_FILE, "alias file"), ALIASES_FILE)
    out = []
    for entry in raw or []:
        out.append(
            Alias(
                re.compile(str(entry["match"]), re.IGNORECASE),
                entry.get("use"),
                str(entry.get("example") or entry["match"]),
                entry.get("note"),
            )
        )
    return out
