"""Environments, data, compute and the constants azure-ai-ml scripts build them with.

Each entity is what ``azure.ai.ml.entities`` calls it, with the fields Lapis
acts on; ``clean``/``_as_field`` turn one into the YAML a file would hold, so
an entity given inside a job or deployment (``environment=Environment(…)``)
is checked by the server exactly like the same YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lapis.api import environments as environments_api
from lapis.sdk.views import _View


class AssetTypes:
    """Input, output and model types, by azure-ai-ml's constant names."""

    URI_FILE = "uri_file"
    URI_FOLDER = "uri_folder"
    MLTABLE = "mltable"
    MLFLOW_MODEL = "mlflow_model"
    CUSTOM_MODEL = "custom_model"
    TRITON_MODEL = "triton_model"


class InputOutputModes:
    """How a job sees an input or output (``mode:``), by azure-ai-ml's constant names."""

    RO_MOUNT = "ro_mount"
    RW_MOUNT = "rw_mount"
    DOWNLOAD = "download"
    UPLOAD = "upload"
    DIRECT = "direct"
    EVAL_MOUNT = "eval_mount"
    EVAL_DOWNLOAD = "eval_download"


def local_path(path: str | Path, base: Path | None = None) -> str:
    """A local path made absolute (against ``base`` or the current folder); URIs unchanged."""
    text = str(path)
    if "://" in text or text.startswith("azureml:"):
        return text
    p = Path(text).expanduser()
    return str(p if p.is_absolute() else ((base or Path.cwd()) / p).resolve())


@dataclass
class BuildContext:
    """A Docker build context (``build:``): a folder with a Dockerfile."""

    path: str | Path
    dockerfile_path: str | None = None

    def _as_field(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": local_path(self.path)}
        if self.dockerfile_path:
            out["dockerfile_path"] = self.dockerfile_path
        return out


@dataclass(repr=False)
class Environment(_View):
    """An environment to register or to run in: an image, a conda file, or a build context.

    ``conda_file`` is a path (read by the client: the server never reads the
    caller's files) or the conda document as a dict. Named inside a job or a
    deployment, a registered one is referred to by ``azureml:NAME:VERSION``
    and one built in code is sent inline.
    """

    wire = environments_api.EnvironmentOut
    page = "/environments/{name}"

    name: str | None = None
    version: str | None = None
    image: str | None = None
    conda_file: str | Path | dict[str, Any] | None = None
    build: BuildContext | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def _values(cls, raw: dict[str, Any]) -> dict[str, Any]:
        values = super()._values(raw)
        values["build"] = None
        values["tags"] = dict(raw.get("tags") or {})
        return values

    @property
    def id(self) -> str:
        return f"azureml:{self.name}:{self.version}" if self.version else f"azureml:{self.name}"

    def _conda(self) -> str | None:
        """The conda file's text: a dict as YAML, a path read (relative to the cwd)."""
        if self.conda_file is None:
            return None
        if isinstance(self.conda_file, dict):
            return yaml.safe_dump(self.conda_file, sort_keys=False)
        text = str(self.conda_file)
        if "\n" in text.strip():
            return text  # already the document
        from lapis.errors import InvalidParameterValue

        target = Path(local_path(text))
        if not target.is_file():
            raise InvalidParameterValue(f"Environment conda_file: file not found: {target}")
        return target.read_text()

    def _document(self) -> dict[str, Any]:
        doc = super()._document()
        conda = self._conda()
        if conda is not None:
            doc["conda_file"] = conda if conda.endswith("\n") else conda + "\n"
        return doc

    def _as_field(self) -> Any:
        inline = self.image or self.conda_file is not None or self.build is not None
        if self.name and (self._answered or not inline):
            return self.id if self.version else f"azureml:{self.name}@latest"
        doc = {k: v for k, v in self._document().items() if k in ("image", "conda_file", "build")}
        return doc

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, version={self.version!r})"


@dataclass
class Data:
    """A data asset. Registering one comes with datastores; as a job input it is its path."""

    path: str | Path
    type: str = AssetTypes.URI_FOLDER
    name: str | None = None
    version: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def _as_field(self) -> dict[str, Any]:
        return {"type": self.type, "path": local_path(self.path)}


@dataclass
class ComputeInstance:
    """A compute instance (a managed single node on the server's host)."""

    name: str
    size: str | None = None
    idle_time_before_shutdown_minutes: int | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    ssh_public_access_enabled: bool | None = None
    schedules: Any = None

    def _document(self) -> dict[str, Any]:
        from lapis.sdk.views import clean

        return {"type": "computeinstance", **clean(self)}


@dataclass
class AmlCompute:
    """A compute cluster (min..max nodes of one size) on Ray; ``idle_time_before_scale_down``
    in seconds. ``provider`` (a Lapis setting, not Azure's) says where the nodes run:
    ``{"type": "ssh", "head_address": ..., "hosts": [...]}``, or an attached Ray cluster,
    ``{"type": "ray", "address": "http://host:8265", "token": ...}`` (docs/compute.md)."""

    name: str
    size: str | None = None
    min_instances: int | None = None
    max_instances: int | None = None
    idle_time_before_scale_down: int | None = None
    tier: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    provider: dict[str, Any] | None = None

    def _document(self) -> dict[str, Any]:
        from lapis.sdk.views import clean

        return {"type": "amlcompute", **clean(self)}
