"""Datastore YAML in Azure ML CLI v2's shapes, checked with file:line messages.

A file written for ``az ml datastore create -f`` loads here: ``azure_blob``
(``account_name``, ``container_name``), ``azure_data_lake_gen2``
(``filesystem``) and ``azure_file`` (``file_share_name``), each with Azure's
``endpoint`` (the storage domain, default ``core.windows.net``), ``protocol``
and ``credentials`` (``account_key``, ``sas_token``, or a service principal's
``tenant_id``/``client_id``/``client_secret``; none: the server's own identity).
Lapis adds ``account_url`` (the whole service URL, for Azurite or a sovereign
cloud), ``s3`` for S3-compatible object stores (``bucket``, ``endpoint_url``,
``region``, ``credentials: {access_key_id, secret_access_key}``) and ``local``
(a folder on the server's host, ``path``).

Credentials are split from the settings here, so nothing downstream can store or
show them by accident: the service seals them and the API only says which kind
a datastore has.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lapis.errors import InvalidParameterValue
from lapis.specs.yaml_lines import Located, located, string_map, suggest

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
COMMON = {"$schema", "name", "type", "description", "tags", "credentials"}
AZURE = {"account_name", "endpoint", "protocol", "account_url"}
SETTINGS: dict[str, set[str]] = {
    "azure_blob": AZURE | {"container_name"},
    "azure_data_lake_gen2": AZURE | {"filesystem"},
    "azure_file": AZURE | {"file_share_name"},
    "s3": {"bucket", "endpoint_url", "region"},
    "local": {"path"},
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "azure_blob": ("account_name", "container_name"),
    "azure_data_lake_gen2": ("account_name", "filesystem"),
    "azure_file": ("account_name", "file_share_name"),
    "s3": ("bucket",),
    "local": ("path",),
}
PROTOCOLS = {
    "azure_blob": ("https", "wasbs"),
    "azure_data_lake_gen2": ("https", "abfss"),
    "azure_file": ("https",),
}
# credential kind -> its keys (required, optional)
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "account_key": (("account_key",), ()),
    "sas_token": (("sas_token",), ()),
    "service_principal": (
        ("tenant_id", "client_id", "client_secret"),
        ("authority_url", "resource_url"),
    ),
    "access_key": (("access_key_id", "secret_access_key"), ("session_token",)),
}
ALLOWED_KINDS = {
    "azure_blob": ("account_key", "sas_token", "service_principal"),
    "azure_data_lake_gen2": ("service_principal", "account_key", "sas_token"),
    "azure_file": ("account_key", "sas_token"),
    "s3": ("access_key",),
    "local": (),
}
NOT_HERE = {
    "azure_data_lake_gen1": "Azure retired Data Lake Storage Gen1 in February 2024; move the "
    "data to azure_data_lake_gen2",
    "one_lake": "OneLake (Microsoft Fabric) datastores are not supported",
    "onelake": "OneLake (Microsoft Fabric) datastores are not supported",
    "hdfs": "HDFS datastores are not supported",
}


@dataclass
class DatastoreSpec:
    """A checked datastore: settings anyone may see, credentials only the service holds."""

    name: str
    type: str
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    credentials: dict[str, str] = field(default_factory=dict)
    credential_kind: str = "none"  # one of KINDS, or "none" (the server's identity)


def check_name(loc: Located, name: Any) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise loc.error(
            ("name",),
            f"must start with a letter or digit and hold only letters, digits, '_' and '-' "
            f"(at most 255), got {name!r}",
        )
    return name


def parse_datastore(doc: Mapping[str, Any] | Located, source: str = "<datastore>") -> DatastoreSpec:
    loc = located(doc, source)
    data = loc.data
    if not isinstance(data, Mapping):
        raise InvalidParameterValue(f"{source}: a datastore file must be a mapping of settings")
    kind = str(data.get("type") or "").lower()
    if kind in NOT_HERE:
        raise loc.error(("type",), NOT_HERE[kind])
    if kind not in SETTINGS:
        known = ", ".join(sorted(SETTINGS))
        raise loc.error(
            ("type",), f"must be one of {known}, got {data.get('type')!r}{suggest(kind, SETTINGS)}"
        )
    allowed = COMMON | SETTINGS[kind]
    for key in data:
        if key not in allowed:
            raise loc.error(
                (str(key),), f"is not a setting of a {kind} datastore{suggest(str(key), allowed)}"
            )
    spec = DatastoreSpec(name=check_name(loc, data.get("name")), type=kind)
    if data.get("description") is not None:
        spec.description = str(data["description"])
    if data.get("tags") is not None:
        spec.tags = string_map(loc, "tags", data["tags"])
    for key in REQUIRED[kind]:
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise loc.error((key,), f"is required for a {kind} datastore")
    for key in SETTINGS[kind]:
        if data.get(key) is not None:
            if not isinstance(data[key], str) or not data[key].strip():
                raise loc.error((key,), "must be a non-empty string")
            spec.settings[key] = data[key].strip()
    _check_settings(loc, spec)
    spec.credential_kind, spec.credentials = _credentials(loc, kind, data.get("credentials"))
    return spec


def _check_settings(loc: Located, spec: DatastoreSpec) -> None:
    s = spec.settings
    if spec.type in PROTOCOLS and "account_url" not in s:  # the URL says it all
        s.setdefault("protocol", "https")
        s["protocol"] = s["protocol"].lower()
        if s["protocol"] not in PROTOCOLS[spec.type]:
            raise loc.error(
                ("protocol",), f"must be {' or '.join(PROTOCOLS[spec.type])}, got {s['protocol']!r}"
            )
        s.setdefault("endpoint", "core.windows.net")
    for key in ("account_url", "endpoint_url"):
        if key in s and not s[key].startswith(("http://", "https://")):
            raise loc.error((key,), f"must be an http:// or https:// URL, got {s[key]!r}")
    if spec.type == "local" and not s["path"].startswith("/"):
        raise loc.error(
            ("path",), f"must be an absolute folder on the server's host, got {s['path']!r}"
        )


def _credentials(loc: Located, kind: str, raw: Any) -> tuple[str, dict[str, str]]:
    if raw is None or raw == {}:
        return "none", {}
    if not isinstance(raw, Mapping):
        raise loc.error(("credentials",), "must be a mapping (account_key, sas_token, ...)")
    allowed = ALLOWED_KINDS[kind]
    if not allowed:
        raise loc.error(("credentials",), f"a {kind} datastore takes no credentials")
    keys = {str(k) for k in raw}
    for name in allowed:
        required, optional = KINDS[name]
        if set(required) <= keys:
            extra = keys - set(required) - set(optional)
            if extra:
                bad = sorted(extra)[0]
                raise loc.error(("credentials", bad), f"does not go with {', '.join(required)}")
            out: dict[str, str] = {}
            for key in (*required, *optional):
                if key in raw:
                    value = raw[key]
                    if not isinstance(value, str) or not value.strip():
                        raise loc.error(("credentials", key), "must be a non-empty string")
                    out[key] = value.strip()
            return name, out
    known = {k for name in allowed for k in (*KINDS[name][0], *KINDS[name][1])}
    unknown = sorted(keys - known)
    if unknown:
        raise loc.error(
            ("credentials", unknown[0]),
            f"is not a credential of a {kind} datastore{suggest(unknown[0], known)}",
        )
    ways = "; or ".join(", ".join(KINDS[name][0]) for name in allowed)
    raise loc.error(("credentials",), f"must give {ways}")
