"""``client.datastores`` and the datastore entities, in azure-ai-ml's shape.

``AzureBlobDatastore(name=..., account_name=..., container_name=...,
credentials=AccountKeyConfiguration(account_key=...))`` and its siblings make
the same document ``lapis datastore create -f`` sends; what comes back never holds
the credential (``credential_kind`` says which one it has).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from lapis.sdk.connection import LapisHTTP
from lapis.sdk.helpers import name_of, q, read


@dataclass
class AccountKeyConfiguration:
    account_key: str


@dataclass
class SasTokenConfiguration:
    sas_token: str


@dataclass
class ServicePrincipalConfiguration:
    tenant_id: str
    client_id: str
    client_secret: str
    authority_url: str | None = None
    resource_url: str | None = None


@dataclass
class AccessKeyConfiguration:
    """An S3-compatible store's keys (a Lapis datastore type; Azure has none)."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


Credentials = (
    AccountKeyConfiguration
    | SasTokenConfiguration
    | ServicePrincipalConfiguration
    | AccessKeyConfiguration
    | None
)


def _document(kind: str, entity: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": kind}
    for key, value in entity.__dict__.items():
        if key == "credentials":
            if value is not None:
                doc[key] = {k: v for k, v in value.__dict__.items() if v is not None}
        elif value not in (None, {}):
            doc[key] = value
    return doc


@dataclass(kw_only=True)
class _AzureDatastore:
    """What Azure's three storage datastores share (keyword arguments, as azure-ai-ml's)."""

    kind: ClassVar[str]
    name: str
    account_name: str
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    endpoint: str | None = None
    protocol: str | None = None
    account_url: str | None = None  # Lapis: the whole service URL (Azurite, sovereign clouds)
    credentials: Credentials = None

    def _document(self) -> dict[str, Any]:
        return _document(self.kind, self)


@dataclass(kw_only=True)
class AzureBlobDatastore(_AzureDatastore):
    kind: ClassVar[str] = "azure_blob"
    container_name: str


@dataclass(kw_only=True)
class AzureDataLakeGen2Datastore(_AzureDatastore):
    kind: ClassVar[str] = "azure_data_lake_gen2"
    filesystem: str


@dataclass(kw_only=True)
class AzureFileDatastore(_AzureDatastore):
    kind: ClassVar[str] = "azure_file"
    file_share_name: str


@dataclass
class S3Datastore:
    """An S3-compatible bucket (AWS, MinIO, Ceph): a Lapis datastore type."""

    name: str
    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    credentials: Credentials = None

    def _document(self) -> dict[str, Any]:
        return _document("s3", self)


@dataclass
class Datastore:
    """A datastore as the server shows it: settings, never the credential."""

    name: str
    type: str
    url: str
    credential_kind: str
    has_credentials: bool
    is_default: bool = False
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, key: str) -> Any:  # account_name, container_name, bucket, ...
        settings = self.__dict__.get("settings") or {}
        if key in settings:
            return settings[key]
        raise AttributeError(key)

    @classmethod
    def _from(cls, raw: dict[str, Any]) -> Datastore:
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**known)


class DatastoreOperations:
    """``client.datastores``: create_or_update, get, get_default, list, delete."""

    def __init__(self, http: LapisHTTP) -> None:
        self._http = http

    def create_or_update(self, datastore: Any) -> Datastore:
        """An entity above, a document, or a YAML file's path."""
        if isinstance(datastore, (str, Path)):
            path = Path(datastore).expanduser()
            body = {"yaml": read(path, "datastore file"), "source": str(path)}
        elif isinstance(datastore, dict):
            body = {**datastore, "source": "<sdk>"}
        else:
            body = {**datastore._document(), "source": "<sdk>"}
        return Datastore._from(self._http.post("/api/v1/datastores", body))

    def get(self, name: str) -> Datastore:
        return Datastore._from(self._http.get(f"/api/v1/datastores/{q(name)}"))

    def get_default(self) -> Datastore:
        return self.get("workspaceblobstore")

    def list(self) -> builtins.list[Datastore]:
        found = self._http.get("/api/v1/datastores")["datastores"]
        return [Datastore._from(d) for d in found]

    def delete(self, name: str | Datastore) -> None:
        self._http.request("DELETE", f"/api/v1/datastores/{q(name_of(name))}")
