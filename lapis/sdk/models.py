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

from lapis.api import models as models_api
from lapis.errors import InvalidParameterValue
from lapis.sdk.assets import local_path
from lapis.sdk.connection import LapisHTTP
from lapis.sdk.views import _View

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


@dataclass(repr=False)
class Model(_View):
    """A model version: one to register (``client.models.create_or_update(Model(...))``),
    one the registry answered, or one a deployment serves.

    ``path`` is a local file or folder, ``azureml://jobs/<job>/outputs/<name>``
    or ``runs:/<run>/<path>``; ``version`` defaults to the next integer. Inside
    a deployment, a registered version is named ``azureml:NAME:VERSION`` and one
    with only a local ``path`` is registered inline, as Azure does.
    """

    wire = models_api.ModelVersionOut
    page = "/models/{name}/versions/{version}"

    name: str | None = None
    path: str | Path | None = None
    version: str | None = None
    type: str = "custom_model"
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def _values(cls, raw: dict[str, Any]) -> dict[str, Any]:
        values = super()._values(raw)
        values["version"] = None if raw.get("version") is None else str(raw["version"])
        values["tags"] = dict(raw.get("tags") or {})
        values["properties"] = dict(raw.get("properties") or {})
        values["type"] = raw.get("type") or "custom_model"
        return values

    @property
    def id(self) -> str:
        """``azureml:NAME:VERSION``: how jobs and deployments name this version."""
        return f"azureml:{self.name}:{self.version}" if self.version else f"azureml:{self.name}"

    def _as_field(self) -> Any:
        if self.name and (self._answered or self.path is None):
            return self.id if self.version else f"azureml:{self.name}@latest"
        if self.path is None:
            raise InvalidParameterValue("a Model inside a deployment needs a name or a path")
        return {"path": local_path(self.path), "type": self.type}

    def _to_spec(self) -> dict[str, Any]:
        if self.type not in MODEL_TYPES:
            raise InvalidParameterValue(
                f"Model type must be one of {', '.join(MODEL_TYPES)}, got {self.type!r}"
            )
        if not self.name:
            raise InvalidParameterValue("A model to register needs a name")
        spec: dict[str, Any] = {"name": self.name, "path": str(self.path or ""), "type": self.type}
        for key in ("version", "description"):
            if getattr(self, key) is not None:
                spec[key] = getattr(self, key)
        if self.tags:
            spec["tags"] = dict(self.tags)
        if self.properties:
            spec["properties"] = dict(self.properties)
        return spec

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, version={self.version!r}, type={self.type!r})"


class ModelOperations:
    """``client.models``: register, look up, archive and download model versions.

    Each answer is a ``Model`` (``get`` adds ``lineage``: job → inputs/environment
    → model → deployments); item access (``m["version"]``) reads the JSON answer.
    """

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def _model(self, raw: dict[str, Any]) -> Model:
        return Model._from(raw, self._http.url)

    def create_or_update(self, model: Model | dict[str, Any]) -> Model:
        spec = model._to_spec() if isinstance(model, Model) else dict(model)
        return self._model(register(self._http, spec))

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Model:
        """A version (``version``, or ``label`` ``latest``/an alias, else the latest)."""
        if version is not None and label is not None:
            raise InvalidParameterValue("give either version or label, not both")
        return self._model(self._http.get(model_base(name, version or label or "latest")))

    def list(self, name: str | None = None, include_archived: bool = False) -> builtins.list[Model]:
        found = self._http.get("/api/v1/models", name=name, include_archived=include_archived)
        return [self._model(m) for m in found["models"]]

    def archive(self, name: str, version: str | None = None) -> Model:
        """Hide a version from listings and ``@latest`` (``archive(model)`` works too)."""
        name, version = _named(name, version)
        return self._model(self._http.post(f"{model_base(name, version)}/archive"))

    def restore(self, name: str, version: str | None = None) -> Model:
        name, version = _named(name, version)
        return self._model(self._http.post(f"{model_base(name, version)}/restore"))

    def download(
        self, name: str, version: str, download_path: str | Path = "."
    ) -> builtins.list[Path]:
        """Write the version's files into ``download_path/<name>/``."""
        return download_model_files(self._http, name, version, Path(download_path) / name)


def _named(name: Any, version: str | None) -> tuple[str, str]:
    if isinstance(name, Model):
        return str(name.name), str(version or name.version)
    if version is None:
        raise InvalidParameterValue("give the version to change")
    return str(name), str(version)
