"""Building a batch invocation's job: the input folder, the model copy, the code snapshot.

Split from :mod:`lapis.endpoints.batch.service` so the service keeps to endpoints and
deployments; see that module's docstring for what the job is made of.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lapis.artifacts.snapshot import Snapshot, digest_files, pack
from lapis.endpoints import runtime
from lapis.errors import InvalidParameterValue, InvalidState
from lapis.jobs.service import JobService
from lapis.registry.models import ModelService
from lapis.store.sql.batch import BatchDeployment

DRIVER, *COMPANIONS = runtime.shipped_names(runtime.BATCH)  # lapis_batch_driver.py first
CONFIG = "lapis_batch.json"
TAG_ENDPOINT = "lapis.batch.endpoint"
TAG_DEPLOYMENT = "lapis.batch.deployment"
READY = ".ready"


def job_document(
    endpoint: str, d: BatchDeployment, data: BatchInput, model_dir: Path, nodes: int = 1
) -> dict[str, Any]:
    """The command job (Azure YAML shape) that scores ``data`` with deployment ``d``.
    On a cluster (``nodes`` > 1: the deployment's ``instance_count``) it is a gang of one
    driver per node, each scoring its share of the mini-batches (batch_driver.py)."""
    spread: dict[str, Any] = {}
    if nodes > 1:
        spread = {
            "resources": {"instance_count": nodes},
            "distribution": {"type": "pytorch", "process_count_per_instance": 1},
        }
    doc: dict[str, Any] = {
        "type": "command",
        "display_name": f"{endpoint}/{d.name}",
        "experiment_name": endpoint,
        "description": f"batch scoring of {data.path} by {endpoint}/{d.name}",
        "tags": {TAG_ENDPOINT: endpoint, TAG_DEPLOYMENT: d.name},
        "code": "batch-scoring",
        "command": f"python {DRIVER} --config {CONFIG}",
        "environment": d.spec["environment"]["job"],
        "compute": d.spec["doc"]["compute"],
        "inputs": {
            "data": {"type": data.type, "path": str(data.path)},
            "model": {"type": d.spec["model"]["type"], "path": str(model_dir)},
        },
        "outputs": {"score": {"type": "uri_folder"}},
        "environment_variables": d.spec["doc"].get("environment_variables") or {},
        **spread,
    }
    if nodes > 1:  # the drivers share the work (batch_driver.py)
        doc["environment_variables"] = {**doc["environment_variables"], "LAPIS_BATCH_SPREAD": "1"}
    return doc


INPUT_TYPES = ("uri_folder", "uri_file")


@dataclass(frozen=True)
class BatchInput:
    """What a batch invocation scores: data by reference (``azureml:<asset>``,
    ``azureml://datastores/…``, ``azureml://jobs/…``, a storage URL), resolved like any
    job input, or a file at an http(s) URL, fetched by the job's supervisor."""

    type: str
    path: Path | str  # a Path only for the server's own (internal) invocations


def batch_input(given: str, input_type: str | None = None) -> BatchInput:
    """Check ``given`` against ``input_type`` (an http(s) URL is one ``uri_file``; other
    references default to ``uri_folder``). A local path is refused: the CLI and SDK
    upload local data to the default datastore and send its path."""
    if not isinstance(given, str) or not given.strip():
        raise InvalidParameterValue("'input' must name a folder or a file to score")
    if input_type is not None and input_type not in INPUT_TYPES:
        raise InvalidParameterValue(
            f"input type must be uri_folder or uri_file, got {input_type!r}"
        )
    if given.startswith(("http://", "https://")):
        if input_type == "uri_folder":
            raise InvalidParameterValue(
                f"input '{given}': a folder cannot be fetched over http(s); give one file "
                "with --input-type uri_file, or a local folder"
            )
        return BatchInput("uri_file", given)
    if "://" in given or given.startswith("azureml:"):
        return BatchInput(input_type or "", given)  # "": the asset's own type
    raise InvalidParameterValue(
        f"input '{given}' is a local path: the lapis CLI and SDK upload it to the default "
        "datastore first (the server never reads its own disk for a client); send "
        "azureml://datastores/<datastore>/paths/<path> or azureml:<asset>"
    )


def model_folder(models: ModelService, models_root: Path, name: str, version: str) -> Path:
    """A local copy of a model version's files, fetched once and then reused: the folder
    ``AZUREML_MODEL_DIR`` names, holding the model as Azure lays it out."""
    base = models_root / urllib.parse.quote(name, safe="") / version
    final = base / "model"
    if (base / READY).exists():
        return final
    tmp = base.parent / f".{version}.{uuid.uuid4().hex}"
    try:
        models.materialize(name, version, tmp / "model")
        (tmp / READY).touch()
        with contextlib.suppress(OSError):  # a concurrent invocation fetched it first
            tmp.rename(base)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def scoring_snapshot(jobs: JobService, d: BatchDeployment) -> dict[str, Any]:
    """The job's code: the deployment's scoring code, the driver and its settings."""
    code = d.spec.get("code")
    jobs.snapshots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=jobs.snapshots, prefix=".batch-") as tmp:
        root = Path(tmp) / "code"
        if code:
            source = jobs.snapshots / code["digest"]
            if not source.is_dir():
                raise InvalidState(
                    f"the code snapshot {code['digest'][:12]} of deployment {d.name} is "
                    "missing on this server; create the deployment again"
                )
            shutil.copytree(source, root)
        else:
            root.mkdir()
        runtime.ship(runtime.BATCH, root)
        settings = {**d.spec["settings"], "mlflow_model": code is None}
        (root / CONFIG).write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
        sizes = {
            p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()
        }
        files = tuple(sorted(sizes))
        digest = digest_files(root, files)
        if not jobs.has_snapshot(digest):
            snap = Snapshot(root, files, sum(sizes.values()), digest, None)
            jobs.store_snapshot(digest, io.BytesIO(pack(snap)))
    return {"digest": digest, "files": len(files), "bytes": sum(sizes.values())}
