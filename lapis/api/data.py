"""Wire models of the data API: datastores, data assets and uploads of local data."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class DatastoreOut(BaseModel):
    """A datastore as anyone who may read it sees it: its settings and which kind of
    credential it holds, never the credential."""

    name: str
    type: str
    description: str | None = None
    tags: dict[str, str] = {}
    settings: dict[str, Any] = {}  # account_name, container_name, bucket, path, ...
    credential_kind: str  # account_key | sas_token | service_principal | access_key | none
    has_credentials: bool
    is_default: bool = False
    url: str  # where its files are: https://..., s3://..., file:///...
    created_by: str | None = None
    created_at: int | None = None
    updated_at: int | None = None


class DatastoreList(BaseModel):
    datastores: list[DatastoreOut]


class DatastoreSecrets(BaseModel):
    """``POST /datastores/{name}/listSecrets``: the credential, for those whose role
    allows ``workspaces/datastores/listsecrets/action``."""

    name: str
    credential_kind: str
    secrets: dict[str, str]


class DatastoreEntry(BaseModel):
    path: str  # relative to the datastore's root
    is_dir: bool
    size: int | None = None


class DatastoreListing(BaseModel):
    name: str
    path: str
    entries: list[DatastoreEntry]


class DataOut(BaseModel):
    """One version of a data asset: where the data is (``path``), never a copy of it."""

    name: str
    version: str
    type: str  # uri_file | uri_folder | mltable
    path: str  # azureml://datastores/<ds>/paths/<p>, a storage URL, or a job's output
    description: str | None = None
    tags: dict[str, str] = {}
    properties: dict[str, str] = {}
    archived: bool = False
    job: str | None = None  # the job that produced it
    created_by: str | None = None
    created_at: int
    updated_at: int


class DataList(BaseModel):
    data: list[DataOut]


class UploadBegun(BaseModel):
    """``POST /data/uploads``: the upload's id (its content hash), where the data will be,
    and the files still to send (none when the same content is there already)."""

    upload: str
    path: str
    missing: list[str]
    # files an earlier try left halfway: the bytes the server holds (send from there)
    partial: dict[str, int] = {}
