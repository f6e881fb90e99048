"""Artifact upload and download through the server's artifact proxy.

A run's ``artifact_uri`` is ``mlflow-artifacts:/<exp>/<run>/artifacts``; the
proxy serves that tree at ``/api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/...``.
Files are streamed in both directions (httpx reads an open file in chunks and
sends its length), so an artifact never has to fit in memory.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlparse

from lapis.errors import InvalidParameterValue, LapisError
from lapis.sdk.connection import LapisHTTP

PROXY = "/api/2.0/mlflow-artifacts/artifacts"


def proxy_root(artifact_uri: str) -> str:
    """``mlflow-artifacts:/1/abc/artifacts`` → ``1/abc/artifacts``."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme != "mlflow-artifacts":
        raise LapisError(
            f"artifact location {artifact_uri!r} is not served by the Lapis artifact proxy; "
            "only runs in experiments with mlflow-artifacts:/ locations can upload through it"
        )
    return parsed.path.strip("/")


def _clean_relpath(artifact_path: str | None) -> str:
    if not artifact_path:
        return ""
    p = PurePosixPath(artifact_path.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts:
        raise InvalidParameterValue(
            f"artifact_path must be a relative path without '..': {artifact_path!r}"
        )
    return "/".join(part for part in p.parts if part not in ("", "."))


def _url(root: str, *parts: str) -> str:
    rel = "/".join(p for p in (root, *parts) if p)
    return f"{PROXY}/{quote(rel)}"


def upload_file(
    http: LapisHTTP, artifact_uri: str, local: Path, artifact_path: str | None = None
) -> str:
    """PUT one file; returns its path relative to the run's artifact root."""
    if not local.is_file():
        raise InvalidParameterValue(f"not a file: {local}")
    rel = "/".join(p for p in (_clean_relpath(artifact_path), local.name) if p)
    with local.open("rb") as fh:
        http.request(
            "PUT",
            _url(proxy_root(artifact_uri), rel),
            content=fh,
            headers={"Content-Type": "application/octet-stream"},
        )
    return rel


def upload_dir(
    http: LapisHTTP, artifact_uri: str, local: Path, artifact_path: str | None = None
) -> list[str]:
    """Upload every file below ``local``, keeping the folder structure."""
    if not local.is_dir():
        raise InvalidParameterValue(f"not a directory: {local}")
    base = _clean_relpath(artifact_path)
    done = []
    for dirpath, _dirs, files in os.walk(local):
        sub = Path(dirpath).relative_to(local).as_posix()
        for name in sorted(files):
            dest = "/".join(p for p in (base, "" if sub == "." else sub) if p)
            done.append(upload_file(http, artifact_uri, Path(dirpath) / name, dest or None))
    return done


def download_file(http: LapisHTTP, artifact_uri: str, rel: str, dest: Path) -> Path:
    """GET one artifact into ``dest`` (a file path), streaming to disk."""
    url = _url(proxy_root(artifact_uri), _clean_relpath(rel))
    dest.parent.mkdir(parents=True, exist_ok=True)
    with http.stream("GET", url) as resp, dest.open("wb") as fh:
        for block in resp.iter_bytes(1 << 20):
            fh.write(block)
    return dest


def list_artifacts(http: LapisHTTP, artifact_uri: str, rel: str = "") -> list[dict[str, object]]:
    """The files and folders directly under ``rel``."""
    path = "/".join(p for p in (proxy_root(artifact_uri), _clean_relpath(rel)) if p)
    body = http.get(PROXY, path=path)
    files = body.get("files", []) if isinstance(body, dict) else []
    return list(files)
