"""A submission's inputs, checked and resolved before the job exists.

Literal inputs keep their value. Path inputs name data by reference — a data asset,
a datastore path, another job's output, a storage or http(s) URL — and the data layer
(lapis/data/job_data.py) says where the bytes are; the stored entry never holds a
credential. A local path is refused from clients (the CLI and SDK upload local data to
the default datastore first, so the server never reads its own disk for one); only
the server's own submissions (a batch invocation's model copy) may name one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lapis.data.job_data import JobData
from lapis.entities.auth import Principal
from lapis.errors import InvalidParameterValue
from lapis.specs.job import CommandJobSpec

PATH_INPUTS = {"uri_file", "uri_folder", "mlflow_model", "custom_model", "mltable"}


def resolve_inputs(
    spec: CommandJobSpec,
    data: JobData | None,
    base_dir: Path | None,
    source: str,
    internal: bool = False,
    principal: Principal | None = None,
) -> dict[str, dict[str, Any]]:
    """The stored form of every input: ``{type, mode, path, …}`` or ``{type, value}``."""
    out: dict[str, dict[str, Any]] = {}
    for name, item in spec.inputs.items():
        entry: dict[str, Any] = {"type": item.type, "mode": item.mode}
        if item.type not in PATH_INPUTS:
            entry["value"] = item.value
        elif item.path is None:
            entry["path"] = None
        elif "://" in item.path or item.path.startswith("azureml:"):
            if data is None:
                raise InvalidParameterValue(f"{source}: inputs.{name}.path: no data layer")
            entry["path"] = item.path
            entry.update(data.resolve_input(name, item.type, item.path, principal, source))
        elif internal:
            entry["path"] = _own_path(name, item.type, item.path, base_dir, source)
        else:
            raise InvalidParameterValue(
                f"{source}: inputs.{name}.path: '{item.path}' is a local path: the lapis CLI "
                "and SDK upload it to the default datastore first (the server never reads "
                "its own disk for a client); send azureml://datastores/<datastore>/paths/"
                "<path> or azureml:<asset>",
                field=f"inputs.{name}.path",
            )
        out[name] = entry
    return out


def _own_path(name: str, kind: str, given: str, base_dir: Path | None, source: str) -> str:
    """A path on the server's disk, in a submission the server made itself."""
    path = Path(given).expanduser()
    if not path.is_absolute():
        if base_dir is None:
            raise InvalidParameterValue(f"{source}: inputs.{name}.path: relative, no base_dir")
        path = base_dir / path
    if not path.exists():
        raise InvalidParameterValue(f"{source}: inputs.{name}.path: '{path}' does not exist")
    if kind == "uri_file" and not path.is_file():
        raise InvalidParameterValue(f"{source}: inputs.{name}.path: '{path}' is not a file")
    return str(path.resolve())
