"""``client.models``: the model registry from Python, shaped like azure-ai-ml's.

The CLI (``lapis model …``) uses the same upload and download functions, so a
folder registered from a notebook and one registered from a shell land in the
registry the same way: a pending version is created, each file is PUT under
it, and the version is marked ready only after the last file — a version that
fails half-way is deleted rather than left with missing files.
"""

from __future__ import annotations

import builtins
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lapis.errors import InvalidParameterValue
from lapis.sdk.connection import LapisHTTP

MODEL_TYPES = ("custom_model", "mlflow_model")


def _q(text: object, safe: str = "") -> str:
    return urllib.parse.quote(str(text), safe=safe)


def model_base(name: str, version: object) -> str:
    return f"/api/v1/models/{_q(name)}/versions/{_q(version)}"


def is_local(path: str) -> bool:
    """A local file or folder (uploaded), as opposed to ``runs:/…`` or ``azureml://…``."""
    return not (path.startswith("runs:/") or "://" in path)


def upload_model(http: LapisHTTP, spec: dict[str, Any], local: Path) -> dict[str, Any]:
    """Register ``local`` (a file or a folder) as a new version described by ``spec``."""
    files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
    if not files:
        raise InvalidParameterValue(f"Model path '{local}' has no files")
    # the folder's own name is kept: deployments find the files under it, as in Azure
    folder = None if local.is_file() else local.resolve().name
    body = {**spec, "path": None, "upload": True, "upload_folder": folder}
    created = http.post("/api/v1/models", body)
    base = model_base(created["name"], created["version"])
    try:
        for f in files:
            rel = f.name if f == local else f.relative_to(local).as_posix()
            with open(f, "rb") as fh:
                http.request("PUT", f"{base}/files/{_q(rel, '/')}", content=fh)
        result: dict[str, Any] = http.post(f"{base}/ready")
    except BaseException:
        try:
            http.request("DELETE", base)
        finally:
            raise
    return result


def register(http: LapisHTTP, spec: dict[str, Any]) -> dict[str, Any]:
    """Upload a local path, or reference a job output / run artifact, as a new version."""
    path = str(spec.get("path") or "")
    if not spec.get("name") or not path:
        raise InvalidParameterValue("A model needs a name and a path")
    if is_local(path):
        local = Path(path).expanduser()
        if not local.exists():
            raise InvalidParameterValue(f"Model path '{path}' does not exist")
        return upload_model(http, spec, local)
    result: dict[str, Any] = http.post("/api/v1/models", spec)
    return result


def download_model_files(
    http: LapisHTTP, name: str, version: str, target: Path, *, as_registered: bool = False
) -> list[Path]:
    """Write a version's files under ``target`` (each written whole, then renamed);
    ``as_registered``: inside the folder it was registered as, as ``AZUREML_MODEL_DIR``
    holds it (``target/<folder>/…``; a one-file model stays ``target/<file>``)."""
    written: list[Path] = []
    listing = http.get(f"{model_base(name, version)}/files")
    root = listing["root"]
    if as_registered and listing.get("folder"):
        target = target / str(listing["folder"])
    for item in listing["files"]:
        rel = str(item["path"])
        dest = target / rel
        if target.resolve() not in dest.resolve().parents:
            raise InvalidParameterValue(f"Refusing to write outside {target}: {rel}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        url = f"/api/2.0/mlflow-artifacts/artifacts/{_q(root, '/')}/{_q(rel, '/')}"
        with http.stream("GET", url) as resp, open(tmp, "wb") as fh:
            for chunk in resp.iter_bytes():
                fh.write(chunk)
        tmp.replace(dest)
        written.append(dest)
    return written


@dataclass
class Model:
    """A model version to register (``client.models.create_or_update(Model(...))``).

    ``path`` is a local file or folder, ``azureml://jobs/<job>/outputs/<name>``
    or ``runs:/<run>/<path>``; ``version`` defaults to the next integer.
    """

    name: str
    path: str | Path
    version: str | None = None
    type: str = "custom_model"
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)

    def _to_spec(self) -> dict[str, Any]:
        if self.type not in MODEL_TYPES:
            raise InvalidParameterValue(
                f"Model type must be one of {', '.join(MODEL_TYPES)}, got {self.type!r}"
            )
        spec: dict[str, Any] = {"name": self.name, "path": str(self.path), "type": self.type}
        for key in ("version", "description"):
            if getattr(self, key) is not None:
                spec[key] = getattr(self, key)
        if self.tags:
            spec["tags"] = dict(self.tags)
        if self.properties:
            spec["properties"] = dict(self.properties)
        return spec


class ModelOperations:
    """``client.models``: register, look up, archive and download model versions.

    Answers are the server's JSON (a dict per version, with ``lineage`` on
    ``get``): job → inputs/environment → model → deployments.
    """

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def create_or_update(self, model: Model | dict[str, Any]) -> dict[str, Any]:
        spec = model._to_spec() if isinstance(model, Model) else dict(model)
        return register(self._http, spec)

    def get(
        self, name: str, version: str | None = None, label: str | None = None
    ) -> dict[str, Any]:
        """A version (``version``, or ``label`` ``latest``/an alias, else the latest)."""
        if version is not None and label is not None:
            raise InvalidParameterValue("give either version or label, not both")
        result: dict[str, Any] = self._http.get(model_base(name, version or label or "latest"))
        return result

    def list(
        self, name: str | None = None, include_archived: bool = False
    ) -> builtins.list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._http.get(
            "/api/v1/models", name=name, include_archived=include_archived
        )["models"]
        return found

    def archive(self, name: str, version: str) -> dict[str, Any]:
        result: dict[str, Any] = self._http.post(f"{model_base(name, version)}/archive")
        return result

    def restore(self, name: str, version: str) -> dict[str, Any]:
        result: dict[str, Any] = self._http.post(f"{model_base(name, version)}/restore")
        return result

    def download(
        self, name: str, version: str, download_path: str | Path = "."
    ) -> builtins.list[Path]:
        """Write the version's files into ``download_path/<name>/``."""
        return download_model_files(self._http, name, version, Path(download_path) / name)
