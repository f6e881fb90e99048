"""``client.environments`` and ``client.data``."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

from lapis.errors import InvalidParameterValue
from lapis.sdk.assets import Data, Environment
from lapis.sdk.connection import LapisHTTP
from lapis.sdk.helpers import q, read
from lapis.specs.yaml_lines import safe_load


class EnvironmentOperations:
    """``client.environments``: register and look up environment versions."""

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def _env(self, raw: dict[str, Any]) -> Environment:
        return Environment._from(raw, self._http.url)

    def create_or_update(
        self, environment: Environment | dict[str, Any] | str | Path
    ) -> Environment:
        """Register a version from an ``Environment``, a document or a YAML file (the
        next integer unless given).

        A ``conda_file`` given as a path is read here (relative to the YAML file, or to
        the current directory for a dict) and sent inlined: the server never reads
        the caller's files.
        """
        if isinstance(environment, (str, Path)):
            path = Path(environment).expanduser()
            text = read(path, "environment file")
            data = safe_load(text, str(path))
            conda = _conda_text(data.get("conda_file") if isinstance(data, dict) else None, path)
            body: dict[str, Any] = {
                "yaml": text,
                "source": path.name,
                "overrides": {"conda_file": conda},
            }
        elif isinstance(environment, Environment):
            body = {"doc": environment._document(), "source": "<sdk>"}
        else:
            doc = dict(environment)
            conda = _conda_text(doc.get("conda_file"), Path.cwd() / "<sdk>")
            if conda is not None:
                doc["conda_file"] = conda
            body = {"doc": doc, "source": "<sdk>"}
        return self._env(self._http.post("/api/v1/environments", body))

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Environment:
        """One version: ``version`` exactly, else ``label`` (only ``latest``), else the latest."""
        if version is not None and label is not None:
            raise InvalidParameterValue("give either version or label, not both")
        if label is not None and label != "latest":
            raise InvalidParameterValue(f"Unknown label '{label}': only 'latest' is supported")
        ref = version or "latest"
        return self._env(self._http.get(f"/api/v1/environments/{q(name)}/versions/{q(str(ref))}"))

    def list(self, name: str | None = None) -> list[Environment]:
        """The latest version of every environment, or every version of ``name``."""
        path = f"/api/v1/environments/{q(name)}/versions" if name else "/api/v1/environments"
        return [self._env(e) for e in self._http.get(path)["environments"]]

    def archive(self, name: str, version: str) -> Environment:
        """Hide a version from listings and ``@latest``."""
        return self._env(
            self._http.post(f"/api/v1/environments/{q(name)}/versions/{q(version)}/archive")
        )


def _conda_text(raw: Any, anchor: Path) -> str | None:
    """The conda file's text when it is named by path (relative to ``anchor``'s folder)."""
    if not isinstance(raw, str) or "\n" in raw.strip():
        return None
    target = (anchor.parent / raw).expanduser().resolve()
    if not target.is_file():
        raise InvalidParameterValue(f"{anchor.name}: conda_file: file not found: {target}")
    return target.read_text()


class DataOperations:
    """``client.data``: data assets, in azure-ai-ml's shape. A ``Data`` whose path is
    local is uploaded first (to the default datastore, once per content)."""

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def _data(self, raw: dict[str, Any]) -> Data:
        return Data(path=raw["path"], type=raw["type"], name=raw["name"],
                    version=raw["version"], description=raw.get("description"),
                    tags=raw.get("tags") or {})  # fmt: skip

    def create_or_update(self, data: Data) -> Data:
        from lapis.sdk.data_upload import upload_local

        if not data.name:
            raise InvalidParameterValue("a data asset to register needs a name")
        path = str(data.path)
        if "://" not in path and not path.startswith("azureml:"):
            path = upload_local(self._http, path, data.type)
        body = {"name": data.name, "type": data.type, "path": path, "version": data.version,
                "description": data.description, "tags": data.tags, "source": "<sdk>"}  # fmt: skip
        made = self._http.post("/api/v1/data", {k: v for k, v in body.items() if v is not None})
        return self._data(made)

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Data:
        """One version; ``label="latest"`` (or neither): the newest not archived."""
        which = version or "latest"
        return self._data(self._http.get(f"/api/v1/data/{q(name)}/versions/{q(which)}"))

    def list(self, name: str | None = None) -> builtins.list[Data]:
        if name:
            found = self._http.get(f"/api/v1/data/{q(name)}/versions")["data"]
        else:
            found = self._http.get("/api/v1/data")["data"]
        return [self._data(d) for d in found]

    def download(
        self, name: str, version: str | None = None, download_path: str | Path = "."
    ) -> None:
        """The asset's files into ``<download_path>/<name>/`` (as azure-ai-ml's)."""
        from lapis.sdk.data_upload import download_asset

        download_asset(self._http, name, version, download_path)

    def archive(self, name: str, version: str | None = None) -> None:
        self._http.post(f"/api/v1/data/{q(name)}/archive", {"version": version} if version else {})

    def restore(self, name: str, version: str | None = None) -> None:
        self._http.post(f"/api/v1/data/{q(name)}/restore", {"version": version} if version else {})
