"""Datastores: named places where data lives, with their credentials sealed.

A datastore is a row: its type, its settings (account, container, bucket,
folder) and its credential sealed with the workspace key (lapis/store/sealed.py),
so neither a copy of the database nor any API answer reveals it; only
``listsecrets`` opens it, for principals whose role allows that action.

Every workspace has two more that are not rows: ``workspaceblobstore`` (the
default, where uploaded data goes) and ``workspaceartifactstore``, folders of
the workspace's artifact root. They cannot be changed or deleted.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lapis.api import data as api
from lapis.errors import InvalidParameterValue, ResourceDoesNotExist
from lapis.specs.datastore import DatastoreSpec, parse_datastore
from lapis.specs.yaml_lines import Located
from lapis.store.sealed import Sealer
from lapis.store.sql.datastores import DatastoreRow, DatastoreStore
from lapis.store.sql.engine import Database

DEFAULT = "workspaceblobstore"
BUILTIN = (DEFAULT, "workspaceartifactstore")


def url_of(kind: str, settings: Mapping[str, Any]) -> str:
    """Where a datastore's files are, as a URL users know from Azure's and S3's tools."""
    if kind in ("azure_blob", "azure_data_lake_gen2", "azure_file"):
        holder = settings.get("container_name") or settings.get("filesystem")
        holder = holder or settings.get("file_share_name")
        if settings.get("account_url"):
            return f"{str(settings['account_url']).rstrip('/')}/{holder}"
        service = {"azure_blob": "blob", "azure_data_lake_gen2": "dfs", "azure_file": "file"}[kind]
        protocol = settings.get("protocol", "https")
        host = (
            f"{settings['account_name']}.{service}.{settings.get('endpoint', 'core.windows.net')}"
        )
        if protocol in ("wasbs", "abfss"):
            return f"{protocol}://{holder}@{host}"
        return f"https://{host}/{holder}"
    if kind == "s3":
        return f"s3://{settings['bucket']}"
    if kind == "local":
        return f"file://{settings['path']}"
    return str(settings.get("url", ""))


class DatastoreService:
    def __init__(
        self,
        db: Database,
        sealer: Sealer,
        artifact_root: str,
        home: Path,
        local_roots: tuple[str, ...] = (),
    ) -> None:
        self.store = DatastoreStore(db)
        self.sealer = sealer
        self.root = artifact_root.rstrip("/")
        self.home = home.resolve()
        self.local_roots = tuple(Path(r).resolve() for r in local_roots)

    # --- the workspace's own -----------------------------------------------------------
    def _builtin(self, name: str) -> api.DatastoreOut:
        url = f"{self.root}/datastores/{name}"
        return api.DatastoreOut(
            name=name,
            type="workspace",
            description="the workspace's "
            + ("default datastore: uploaded data goes here" if name == DEFAULT else "artifacts"),
            settings={"url": url},
            credential_kind="none",
            has_credentials=False,
            is_default=name == DEFAULT,
            url=url,
        )

    @staticmethod
    def artifact_path(name: str, rel: str) -> str | None:
        """Where a path on one of the workspace's own datastores lies in the artifact store
        (they are folders of its root), so the registry and downloads can read it as they
        read any artifact; None for a datastore of its own."""
        if name.lower() not in BUILTIN:
            return None
        return f"datastores/{name.lower()}/{rel}".rstrip("/")

    def _view(self, row: DatastoreRow) -> api.DatastoreOut:
        return api.DatastoreOut(
            name=row.name,
            type=row.type,
            description=row.description,
            tags=row.tags,
            settings=row.settings,
            credential_kind=row.credential_kind,
            has_credentials=row.credentials is not None,
            url=url_of(row.type, row.settings),
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    # --- the API -----------------------------------------------------------------------
    def create_or_update(
        self, doc: Mapping[str, Any] | Located, source: str, by: str | None
    ) -> api.DatastoreOut:
        """``az ml datastore create``: a new datastore, or the same name's new settings
        (as Azure's create does); the workspace's own two cannot be replaced."""
        spec = parse_datastore(doc, source)
        if spec.name.lower() in BUILTIN:
            raise InvalidParameterValue(
                f"{source}: '{spec.name}' is the workspace's own datastore; choose another name",
                field="name",
            )
        if spec.type == "local":
            self._check_local(spec.settings["path"], source)
        now = int(time.time() * 1000)
        self.store.put(self._row(spec, by, now))
        return self.get(spec.name)

    def _check_local(self, path: str, source: str) -> None:
        """A ``local`` datastore names a folder under one the server's operator allowed
        (LAPIS_LOCAL_DATASTORE_ROOTS), and never the workspace home (its key is there)."""
        folder = Path(path).resolve()
        if folder == self.home or self.home in folder.parents or folder in self.home.parents:
            raise InvalidParameterValue(
                f"{source}: 'path' {path} holds or is inside the workspace home; choose "
                "another folder",
                field="path",
            )
        if not any(folder == r or r in folder.parents for r in self.local_roots):
            allowed = ", ".join(map(str, self.local_roots)) or "none are allowed"
            raise InvalidParameterValue(
                f"{source}: 'path' {path} is not under a folder the server allows for local "
                f"datastores ({allowed}); the server's operator sets LAPIS_LOCAL_DATASTORE_ROOTS",
                field="path",
            )

    def _row(self, spec: DatastoreSpec, by: str | None, now: int) -> DatastoreRow:
        sealed = self.sealer.seal(json.dumps(spec.credentials)) if spec.credentials else None
        return DatastoreRow(
            name=spec.name,
            type=spec.type,
            description=spec.description,
            credential_kind=spec.credential_kind,
            credentials=sealed,
            created_by=by,
            created_at=now,
            updated_at=now,
            tags=spec.tags,
            settings=spec.settings,
        )

    def list(self) -> list[api.DatastoreOut]:
        return [self._builtin(n) for n in BUILTIN] + [self._view(r) for r in self.store.all()]

    def get(self, name: str) -> api.DatastoreOut:
        if name.lower() in BUILTIN:
            return self._builtin(name.lower())
        return self._view(self._row_of(name))

    def _row_of(self, name: str) -> DatastoreRow:
        row = self.store.get(name)
        if row is None:
            raise ResourceDoesNotExist(
                f"Datastore '{name}' not found; `lapis datastore list` lists them"
            )
        return row

    def delete(self, name: str) -> None:
        """Forget the datastore (its data stays where it is, as on Azure)."""
        if name.lower() in BUILTIN:
            raise InvalidParameterValue(f"'{name}' is the workspace's own datastore: it stays")
        if not self.store.remove(name):
            raise ResourceDoesNotExist(f"Datastore '{name}' not found")

    def browse(self, name: str, path: str = "") -> builtins.list[dict[str, Any]]:
        """One folder of the datastore, read with its own credential (the caller's role
        must allow using it: ``listsecrets``)."""
        from lapis.data.filesystems import listing

        if name.lower() in BUILTIN:
            view = self._builtin(name.lower())
            return listing(view.name, view.type, view.settings, {}, path)
        row = self._row_of(name)  # one read: settings and the sealed credential
        opened = json.loads(self.sealer.open(row.credentials)) if row.credentials else {}
        return listing(row.name, row.type, row.settings, opened, path)

    def secrets(self, name: str) -> api.DatastoreSecrets:
        """The credential, opened: only for ``listsecrets`` and for the data layer itself."""
        if name.lower() in BUILTIN:
            return api.DatastoreSecrets(name=name.lower(), credential_kind="none", secrets={})
        row = self._row_of(name)
        opened = json.loads(self.sealer.open(row.credentials)) if row.credentials else {}
        return api.DatastoreSecrets(
            name=row.name, credential_kind=row.credential_kind, secrets=opened
        )
