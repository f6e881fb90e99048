"""Data-asset YAML in Azure ML CLI v2's shape, and the data URIs jobs and assets name.

A file written for ``az ml data create -f`` loads here: ``name``, ``version``,
``type`` (``uri_file``, ``uri_folder`` — the default — or ``mltable``),
``path``, ``description``, ``tags``, and the older ``datastore:`` plus a path
relative to it. ``path`` is one of the places Azure's files name, classified by
``parse_data_uri`` so every later step (upload, resolution, mounting) reads one
shape:

- a local file or folder (``./data``, ``/abs/data``) — uploaded by the client;
- ``azureml://datastores/<ds>/paths/<p>`` (and the long form with subscription,
  resource group and workspace, whose datastore part is what counts here);
- ``azureml://jobs/<job>/outputs/<output>`` (``<output>`` may be ``artifacts``);
- storage URLs: ``wasbs://``/``wasb://``, ``abfss://``/``abfs://``, ``s3://``,
  ``https://``/``http://``;
- another asset, ``azureml:<name>:<version>`` or ``azureml:<name>@latest``.

Data *import* files (``type`` with a ``source:`` from a database) are refused in
one line: Lapis does not run import jobs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lapis.errors import InvalidParameterValue
from lapis.specs.yaml_lines import Located, located, string_map, suggest

TYPES = ("uri_file", "uri_folder", "mltable")
KEYS = {"$schema", "name", "version", "type", "path", "description", "tags", "datastore",
        "properties", "stage"}  # fmt: skip
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,29}$")
_DATASTORE = re.compile(
    r"^azureml://(?:subscriptions/[^/]+/resourcegroups/[^/]+/(?:providers/[^/]+/)?"
    r"workspaces/[^/]+/)?datastores/(?P<ds>[^/]+)/paths/(?P<path>.*)$",
    re.IGNORECASE,
)
_JOB = re.compile(r"^azureml://jobs/(?P<job>[^/]+)/outputs/(?P<output>[^/]+)(?:/(?P<path>.*))?$")
_ASSET = re.compile(r"^azureml:(?P<name>[^:@/]+)(?::(?P<version>[^:@/]+)|@(?P<label>[^:@/]+))?$")
STORAGE_SCHEMES = ("wasbs", "wasb", "abfss", "abfs", "s3", "https", "http")


@dataclass(frozen=True)
class DataUri:
    """Where data is, as a kind and its parts."""

    kind: str  # local | datastore | job_output | url | asset
    text: str
    datastore: str | None = None
    path: str = ""
    job: str | None = None
    output: str | None = None
    scheme: str | None = None
    name: str | None = None
    version: str | None = None
    label: str | None = None


def parse_data_uri(text: str) -> DataUri:
    """The kind of place ``text`` names (raises InvalidParameterValue for a scheme no
    datastore can read)."""
    raw = text.strip()
    if not raw:
        raise InvalidParameterValue("a data path must not be empty")
    m = _DATASTORE.match(raw)
    if m:
        return DataUri("datastore", raw, datastore=m["ds"], path=m["path"].strip("/"))
    m = _JOB.match(raw)
    if m:
        return DataUri("job_output", raw, job=m["job"], output=m["output"],
                       path=(m["path"] or "").strip("/"))  # fmt: skip
    if raw.startswith("azureml://"):
        raise InvalidParameterValue(
            f"'{raw}' is not an azureml:// path Lapis knows: use "
            "azureml://datastores/<datastore>/paths/<path> or azureml://jobs/<job>/outputs/<output>"
        )
    m = _ASSET.match(raw)
    if m:
        return DataUri("asset", raw, name=m["name"], version=m["version"], label=m["label"])
    if "://" in raw:
        scheme = raw.split("://", 1)[0].lower()
        if scheme not in STORAGE_SCHEMES:
            raise InvalidParameterValue(
                f"'{raw}': the {scheme}:// scheme is not supported; use one of "
                + ", ".join(f"{s}://" for s in STORAGE_SCHEMES)
                + ", azureml://datastores/…, or a local path"
            )
        return DataUri("url", raw, scheme=scheme)
    return DataUri("local", raw, path=raw)


@dataclass
class DataAssetSpec:
    """A checked data-asset document; ``uri`` is its path, classified."""

    name: str
    type: str = "uri_folder"
    version: str | None = None  # None: the next integer
    uri: DataUri | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)


def parse_data_asset(doc: Mapping[str, Any] | Located, source: str = "<data>") -> DataAssetSpec:
    loc = located(doc, source)
    data = loc.data
    if not isinstance(data, Mapping):
        raise InvalidParameterValue(f"{source}: a data asset file must be a mapping of settings")
    if "source" in data:
        raise loc.error(("source",), "data import (from a database or S3 by a job) is not "
                        "supported; register the data where it already is with path:")  # fmt: skip
    for key in data:
        if key not in KEYS:
            raise loc.error(
                (str(key),), f"is not a setting of a data asset{suggest(str(key), KEYS)}"
            )
    name = data.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise loc.error(("name",), "must start with a letter or digit and hold only letters, "
                        f"digits, '_', '-' and '.' (at most 255), got {name!r}")  # fmt: skip
    spec = DataAssetSpec(name=name)
    kind = str(data.get("type") or "uri_folder").lower()
    if kind not in TYPES:
        raise loc.error(("type",), f"must be one of {', '.join(TYPES)}, got {data.get('type')!r}")
    spec.type = kind
    if data.get("version") is not None:
        version = str(data["version"])
        if not VERSION.match(version) or version.lower() == "latest":
            raise loc.error(
                ("version",),
                f"must be letters, digits, '_', '-', '.' (not 'latest'), got {version!r}",
            )
        spec.version = version
    path = data.get("path")
    if not isinstance(path, str) or not path.strip():
        raise loc.error(("path",), "is required: a local path, "
                        "azureml://datastores/<ds>/paths/<p>, a storage URL or "
                        "azureml://jobs/<job>/outputs/<output>")  # fmt: skip
    if data.get("datastore") is not None:  # Azure's older shape: a path on that datastore
        ds = str(data["datastore"]).removeprefix("azureml:")
        if "://" in path:
            raise loc.error(("datastore",), "goes with a path relative to the datastore, not a URI")
        path = f"azureml://datastores/{ds}/paths/{path.lstrip('./')}"
    try:
        spec.uri = parse_data_uri(path)
    except InvalidParameterValue as exc:
        raise loc.error(("path",), exc.message) from None
    if spec.uri.kind == "asset":
        raise loc.error(("path",), "names another data asset; give the data's own path")
    if data.get("description") is not None:
        spec.description = str(data["description"])
    if data.get("tags") is not None:
        spec.tags = string_map(loc, "tags", data["tags"])
    if data.get("properties") is not None:
        spec.properties = string_map(loc, "properties", data["properties"])
    return spec
