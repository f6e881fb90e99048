"""A datastore's files through fsspec: the storage libraries users already trust.

``adlfs`` for Azure Blob and ADLS Gen2, ``s3fs`` for S3-compatible stores, the
local filesystem for ``local`` and the artifact root's own filesystem for the
workspace's stores. The libraries are imported when first needed; a missing one
is one line naming the extra to install. Every call carries a timeout, and what
the storage service says when it refuses (a wrong key, no such container) is
passed on as the datastore's reason.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from typing import Any

from lapis.artifacts.store import clean_relpath
from lapis.errors import DatastoreError, InvalidParameterValue

CONNECT_SECONDS = 10
READ_SECONDS = 60


def _need(module: str, extra: str, kind: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InvalidParameterValue(
            f"{kind} datastores need {module}: pip install 'lapis[{extra}]'"
        ) from None


def _azure(kind: str, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> Any:
    adlfs = _need("adlfs", "azure", kind)
    account = str(settings["account_name"])
    common = {"connection_timeout": CONNECT_SECONDS, "read_timeout": READ_SECONDS,
              "skip_instance_cache": True}  # fmt: skip
    url = settings.get("account_url")
    if url:  # Azurite, a sovereign cloud: a connection string names the endpoint whole
        parts = [f"AccountName={account}", f"BlobEndpoint={url}"]
        if "account_key" in secrets:
            parts.append(f"AccountKey={secrets['account_key']}")
        elif "sas_token" in secrets:
            parts.append(f"SharedAccessSignature={secrets['sas_token'].lstrip('?')}")
        else:
            raise InvalidParameterValue(
                "a datastore with account_url needs an account_key or a sas_token"
            )
        scheme = str(url).split("://", 1)[0]
        return adlfs.AzureBlobFileSystem(
            connection_string=";".join([f"DefaultEndpointsProtocol={scheme}", *parts]), **common
        )
    host = f"{account}.blob.{settings.get('endpoint', 'core.windows.net')}"
    given = {k: v for k, v in secrets.items() if k in ("account_key", "sas_token", "tenant_id",
                                                         "client_id", "client_secret")}  # fmt: skip
    return adlfs.AzureBlobFileSystem(account_name=account, account_host=host, **given, **common)


def _s3(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> Any:
    s3fs = _need("s3fs", "s3", "s3")
    client: dict[str, Any] = {}
    if settings.get("endpoint_url"):
        client["endpoint_url"] = settings["endpoint_url"]
    if settings.get("region"):
        client["region_name"] = settings["region"]
    return s3fs.S3FileSystem(
        key=secrets.get("access_key_id"),
        secret=secrets.get("secret_access_key"),
        token=secrets.get("session_token"),
        anon=not secrets,
        client_kwargs=client,
        config_kwargs={"connect_timeout": CONNECT_SECONDS, "read_timeout": READ_SECONDS,
                       "retries": {"max_attempts": 2}},
        skip_instance_cache=True,
    )  # fmt: skip


def open_datastore(
    kind: str, settings: Mapping[str, Any], secrets: Mapping[str, str]
) -> tuple[Any, str]:
    """The filesystem and the root path in it (a container, a bucket, a folder)."""
    if kind in ("azure_blob", "azure_data_lake_gen2"):
        holder = settings.get("container_name") or settings.get("filesystem")
        return _azure(kind, settings, secrets), str(holder)
    if kind == "s3":
        return _s3(settings, secrets), str(settings["bucket"])
    if kind == "local":
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem(), str(settings["path"]).rstrip("/")
    if kind == "workspace":
        import fsspec

        fs, root = fsspec.core.url_to_fs(str(settings["url"]))
        return fs, str(root).rstrip("/")
    raise InvalidParameterValue(f"reading {kind} datastores is not supported yet")


def escapes(fs: Any, root: str, path: str) -> bool:
    """Whether ``path`` leads out of ``root`` by a symbolic link, on a filesystem of this
    host (a ``local`` datastore, a local artifact root). A link in a datastore's folder
    must never make a job, a download or a preview read the workspace's own files."""
    protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    if not {"file", "local"} & set(protocol):
        return False
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep)


def storage_reason(exc: BaseException) -> str:
    """What the storage service said, in one line: its error code, then its message
    without the request id and the XML body Azure appends."""
    code = getattr(exc, "error_code", None)
    code = getattr(code, "value", code)  # Azure's codes are enums
    text = str(exc)
    for cut in ("RequestId:", "Content:", "\n"):
        text = text.split(cut)[0]
    text = " ".join(text.split()) or type(exc).__name__
    if code and str(code) not in text:
        text = f"{code}: {text}"
    return text[:300]


def listing(
    name: str, kind: str, settings: Mapping[str, Any], secrets: Mapping[str, str], path: str
) -> list[dict[str, Any]]:
    """One folder of a datastore: each entry's name (relative to the datastore), whether
    it is a folder, its size. A refusal by the storage service is a DatastoreError with
    the service's reason."""
    rel = clean_relpath(path)
    fs, root = open_datastore(kind, settings, secrets)
    where = posixpath.join(root, rel) if rel else root
    try:
        if kind == "workspace" and not fs.exists(where):
            return []  # made on first upload
        entries = fs.ls(where, detail=True)
    except FileNotFoundError:
        raise DatastoreError(f"datastore '{name}' has no folder '{rel or '/'}'") from None
    except Exception as exc:  # the storage libraries raise their own types
        raise DatastoreError(
            f"datastore '{name}' refused the listing: {storage_reason(exc)}"
        ) from None
    out = []
    for e in entries:
        full = str(e["name"]).rstrip("/")
        if escapes(fs, root, full):
            continue  # a link out of the datastore's folder is not one of its files
        inside = full[len(root) :].lstrip("/") if full.startswith(root) else full
        out.append({"path": inside, "is_dir": e.get("type") == "directory",
                    "size": e.get("size") if e.get("type") != "directory" else None})  # fmt: skip
    return sorted(out, key=lambda e: (not e["is_dir"], e["path"]))
