"""A job's data inputs and outputs by reference: resolved when the job is submitted,
opened when it starts, registered when it completes.

At submission every input that names data by reference — a data asset
(``azureml:<name>:<version>``, ``azureml:<name>@latest``), a datastore path
(``azureml://datastores/<ds>/paths/<p>``), another job's output
(``azureml://jobs/<job>/outputs/<o>``) or a storage URL (``wasbs://``,
``abfss://``, ``s3://``) — is resolved to *where the bytes are*: a datastore (or
the artifact root, for job outputs) and a path inside it. The job's stored spec
keeps only that: never a credential. The principal must be allowed to use the
datastore's credential (``listsecrets``), since the job reads with it.

At launch, :meth:`JobData.sources` opens the credentials for the job's own
supervisor (lapis/compute/data_inputs.py), which reads the data in the input's
mode. When the job ends, outputs with a datastore ``path:`` are written there
and outputs with ``name:`` become data assets (lapis/jobs/ending.py calls
:meth:`upload_output` and :meth:`register_outputs`).
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lapis.artifacts.store import clean_relpath
from lapis.data.assets import DataAssetService
from lapis.data.datastores import BUILTIN, DEFAULT, DatastoreService
from lapis.entities.auth import Principal
from lapis.errors import InvalidParameterValue, PermissionDenied, ResourceDoesNotExist
from lapis.specs.data_asset import DataUri, parse_data_uri

USE_CREDENTIAL = "workspaces/datastores/listsecrets/action"
ARTIFACTS = "@artifacts"  # a job output: the run's artifacts, on the artifact root
_WASB = re.compile(r"^(?:wasbs?|abfss?)://(?P<holder>[^@/]+)@(?P<account>[^./]+)\.(?P<svc>blob|dfs)"
                   r"\.(?P<endpoint>[^/]+)/?(?P<path>.*)$", re.IGNORECASE)  # fmt: skip
_S3 = re.compile(r"^s3://(?P<bucket>[^/]+)/?(?P<path>.*)$", re.IGNORECASE)
_NAME_TOKEN = re.compile(r"\$\{\{\s*name\s*\}\}|\{name\}")


class JobData:
    """What the job service, the scheduler and the job's end ask of the data layer."""

    def __init__(
        self,
        datastores: DatastoreService,
        assets: DataAssetService,
        can: Callable[[Principal, str], bool],
        job_output: Callable[[str, str], dict[str, Any]],
    ) -> None:
        self.datastores = datastores
        self.assets = assets
        self.can = can
        # (job, output) -> where that output was kept ({"datastore", "rel"}); raises when
        # the job does not exist, has no such output or has not completed
        self.job_output = job_output

    # --- submission --------------------------------------------------------------------
    def resolve_input(
        self, name: str, kind: str, path: str, principal: Principal | None, source: str
    ) -> dict[str, Any]:
        """``{"uri", "source": {...}, "asset"?}`` for an input that names data by reference."""
        where = f"{source}: inputs.{name}.path"
        try:
            uri = parse_data_uri(path)
        except InvalidParameterValue as exc:
            raise InvalidParameterValue(f"{where}: {exc}", field=f"inputs.{name}.path") from None
        out: dict[str, Any] = {}
        for _ in range(4):  # an asset names a path, which may name another asset
            if uri.kind != "asset":
                break
            try:
                asset = self.assets.get(str(uri.name), uri.version, uri.label)
            except (ResourceDoesNotExist, InvalidParameterValue) as exc:
                raise type(exc)(f"{where}: {exc}", field=f"inputs.{name}.path") from None
            out.setdefault("asset", f"{asset.name}:{asset.version}")
            if asset.type != kind and not (kind == "mltable" and asset.type == "uri_folder"):
                raise InvalidParameterValue(
                    f"{where}: data asset {asset.name}:{asset.version} is a {asset.type}, "
                    f"but the input's type is {kind}",
                    field=f"inputs.{name}.type",
                )
            uri = parse_data_uri(asset.path)
        if uri.kind == "url" and uri.scheme in ("http", "https"):
            if kind != "uri_file":
                raise InvalidParameterValue(
                    f"{where}: an http(s) URL names one file: give it type: uri_file (not {kind})"
                )
            return {**out, "url": uri.text, "uri": uri.text}  # fetched by the supervisor
        out["source"] = self._source(uri, principal, where)
        out["uri"] = self._canonical(uri, out["source"])
        return out

    def _source(self, uri: DataUri, principal: Principal | None, where: str) -> dict[str, Any]:
        if uri.kind == "datastore":
            ds = self._usable(str(uri.datastore), principal, where)
            return {"datastore": ds, "rel": clean_relpath(uri.path) if uri.path else ""}
        if uri.kind == "job_output":
            try:
                kept = self.job_output(str(uri.job), str(uri.output))
            except (ResourceDoesNotExist, InvalidParameterValue) as exc:
                raise type(exc)(f"{where}: {exc}") from None
            if kept["datastore"] != ARTIFACTS:
                self._usable(str(kept["datastore"]), principal, where)
            rel = posixpath.join(kept["rel"], clean_relpath(uri.path)) if uri.path else kept["rel"]
            return {"datastore": kept["datastore"], "rel": rel}
        if uri.kind == "url":
            return self._storage_url(uri.text, principal, where)
        raise InvalidParameterValue(f"{where}: '{uri.text}' cannot be read by a job")

    def check_usable(self, name: str, principal: Principal | None, where: str) -> str:
        """For reading a datastore on a principal's behalf: as a job's read is checked."""
        return self._usable(name, principal, where)

    def _usable(self, name: str, principal: Principal | None, where: str) -> str:
        """The datastore's name as stored; refused when the principal may not use its
        credential (the job reads with it)."""
        try:
            ds = self.datastores.get(name)
        except ResourceDoesNotExist as exc:
            raise ResourceDoesNotExist(f"{where}: {exc}") from None
        if ds.has_credentials and principal is not None and not self.can(principal, USE_CREDENTIAL):
            raise PermissionDenied(
                f"{where}: datastore '{ds.name}' is read with its credential, and your role "
                f"does not allow using it ({USE_CREDENTIAL})"
            )
        return ds.name

    def _storage_url(self, text: str, principal: Principal | None, where: str) -> dict[str, Any]:
        """A wasbs/abfss/s3 URL: read with the credential of a datastore registered for the
        same account and container (or bucket), else anonymously."""
        m = _WASB.match(text)
        if m:
            account, holder = m["account"].lower(), m["holder"]
            for ds in self.datastores.list():
                s = ds.settings
                if ds.type in ("azure_blob", "azure_data_lake_gen2") and (
                    str(s.get("account_name", "")).lower() == account
                    and (s.get("container_name") or s.get("filesystem")) == holder
                ):
                    name = self._usable(ds.name, principal, where)
                    return {"datastore": name, "rel": clean_relpath(m["path"] or "") or ""}
            settings = {"account_name": account, "container_name": holder,
                        "endpoint": m["endpoint"]}  # fmt: skip
            return {"kind": "azure_blob", "settings": settings, "rel": m["path"].strip("/")}
        m = _S3.match(text)
        if m:
            for ds in self.datastores.list():
                if ds.type == "s3" and ds.settings.get("bucket") == m["bucket"]:
                    name = self._usable(ds.name, principal, where)
                    return {"datastore": name, "rel": m["path"].strip("/")}
            return {"kind": "s3", "settings": {"bucket": m["bucket"]}, "rel": m["path"].strip("/")}
        raise InvalidParameterValue(f"{where}: '{text}' is not a storage URL a job can read")

    @staticmethod
    def _canonical(uri: DataUri, src: Mapping[str, Any]) -> str:
        if src.get("datastore") and src["datastore"] != ARTIFACTS:
            return f"azureml://datastores/{src['datastore']}/paths/{src['rel']}"
        return uri.text

    def resolve_output(
        self, name: str, out: Mapping[str, Any], job: str, principal: Principal | None,
        source: str,
    ) -> dict[str, Any]:  # fmt: skip
        """The stored output: its datastore destination — ``path:`` (``${{name}}`` being
        the job's name) or, as on Azure, ``workspaceblobstore`` under
        ``azureml/<job>/<output>/`` — and the asset it will register."""
        entry = dict(out)
        if out.get("name") and out.get("type") in ("mlflow_model", "custom_model"):
            raise InvalidParameterValue(
                f"{source}: outputs.{name}.name: a {out['type']} output is registered as a "
                f"model: lapis model create --name N --path azureml://jobs/{job}/outputs/{name}"
            )
        path = out.get("path")
        if path:
            where = f"{source}: outputs.{name}.path"
            uri = parse_data_uri(_NAME_TOKEN.sub(job, str(path)))
            ds = self._usable(str(uri.datastore), principal, where)
            if ds.lower() == "workspaceartifactstore":
                raise InvalidParameterValue(f"{where}: workspaceartifactstore is read-only to jobs")
            entry["dest"] = {"datastore": ds, "rel": clean_relpath(uri.path)}
            entry["uri"] = f"azureml://datastores/{ds}/paths/{clean_relpath(uri.path)}"
        else:  # Azure's default: the default datastore, under azureml/<job>/<output>/
            rel = f"azureml/{job}/{name}"
            entry["dest"] = {"datastore": DEFAULT, "rel": rel}
            entry["uri"] = f"azureml://datastores/{DEFAULT}/paths/{rel}/"
        if out.get("name") and out.get("version"):
            try:
                self.assets.get(str(out["name"]), str(out["version"]))
            except ResourceDoesNotExist:
                pass
            else:
                raise InvalidParameterValue(
                    f"{source}: outputs.{name}: data asset {out['name']}:{out['version']} "
                    "already exists (versions never change; leave version: out for the next)"
                )
        return entry

    # --- launch ------------------------------------------------------------------------
    def open_source(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """``{"kind", "settings", "secrets", "rel"}``: what the job's supervisor opens."""
        name = src.get("datastore")
        if name == ARTIFACTS:
            return {"kind": "workspace", "settings": {"url": self.datastores.root}, "secrets": {},
                    "rel": src["rel"]}  # fmt: skip
        if name is None:  # a storage URL no datastore covers: anonymous
            return {"kind": src["kind"], "settings": dict(src["settings"]), "secrets": {},
                    "rel": src["rel"]}  # fmt: skip
        ds = self.datastores.get(str(name))
        secrets = {} if ds.name in BUILTIN else self.datastores.secrets(ds.name).secrets
        return {"kind": ds.type, "settings": dict(ds.settings), "secrets": dict(secrets),
                "rel": src["rel"]}  # fmt: skip

    def sources(self, spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Every by-reference input of a stored job spec, opened for its supervisor."""
        return {
            name: self.open_source(item["source"])
            for name, item in (spec.get("inputs") or {}).items()
            if item.get("source")
        }

    # --- the job's end -----------------------------------------------------------------
    def upload_output(
        self, dest: Mapping[str, Any], local: Path, skipped: Callable[[str], None] | None = None
    ) -> int:
        """Copy the output folder to its datastore path; the number of files written. A
        symbolic link is never followed (it could name any file the server can read):
        ``skipped`` hears of each one, for the job's log."""
        from lapis.data.filesystems import open_datastore, storage_reason
        from lapis.errors import DatastoreError

        opened = self.open_source(dest)
        fs, root = open_datastore(opened["kind"], opened["settings"], opened["secrets"])
        target = posixpath.join(root, opened["rel"]) if opened["rel"] else root
        files = []
        for top, dirs, names in os.walk(local):  # never into a linked folder
            for entry in sorted(names + [d for d in dirs if Path(top, d).is_symlink()]):
                path = Path(top, entry)
                mode = path.lstat().st_mode
                if stat.S_ISREG(mode):
                    files.append(path)
                elif skipped is not None:
                    rel = path.relative_to(local).as_posix()
                    what = (f"a symbolic link to {os.readlink(path)}" if stat.S_ISLNK(mode)
                            else "not a regular file")  # fmt: skip
                    skipped(f"{rel} is {what}; not collected")
        try:
            fs.makedirs(target, exist_ok=True)  # an empty output is an empty folder, not none
            for path in files:
                key = posixpath.join(target, path.relative_to(local).as_posix())
                fs.makedirs(posixpath.dirname(key), exist_ok=True)
                fs.put_file(str(path), key)
        except Exception as exc:  # the storage libraries raise their own types
            raise DatastoreError(
                f"datastore '{dest['datastore']}' refused the output: {storage_reason(exc)}"
            ) from None
        return len(files)

    def register_outputs(self, job: str, spec: Mapping[str, Any], by: str | None) -> list[str]:
        """Each output with ``name:`` as a data asset version (made by this job)."""
        made = []
        for out_name, out in (spec.get("outputs") or {}).items():
            if not out.get("name"):
                continue
            doc = {"name": out["name"], "type": out.get("type", "uri_folder"),
                   "path": out.get("uri") or f"azureml://jobs/{job}/outputs/{out_name}",
                   "description": f"output {out_name} of job {job}"}  # fmt: skip
            if out.get("version"):
                doc["version"] = str(out["version"])
            asset = self.assets.create(doc, f"job {job}: outputs.{out_name}", by, job=job)
            made.append(f"{asset.name}:{asset.version}")
        return made
