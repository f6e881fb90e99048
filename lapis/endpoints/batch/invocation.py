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


def job_document(endpoint: str, d: BatchDeployment, data: Path, model_dir: Path) -> dict[str, Any]:
    """The command job (Azure YAML shape) that scores ``data`` with deployment ``d``."""
    return {
        "type": "command",
        "display_name": f"{endpoint}/{d.name}",
        "experiment_name": endpoint,
        "description": f"batch scoring of {data} by {endpoint}/{d.name}",
        "tags": {TAG_ENDPOINT: endpoint, TAG_DEPLOYMENT: d.name},
        "code": "batch-scoring",
        "command": f"python {DRIVER} --config {CONFIG}",
        "environment": d.spec["environment"]["job"],
        "compute": d.spec["doc"]["compute"],
        "inputs": {
            "data": {"type": "uri_folder", "path": str(data)},
            "model": {"type": d.spec["model"]["type"], "path": str(model_dir)},
        },
        "outputs": {"score": {"type": "uri_folder"}},
        "environment_variables": d.spec["doc"].get("environment_variables") or {},
    }


def input_folder(given: str) -> Path:
    """The folder to score: an absolute local path on the server's machine."""
    if not isinstance(given, str) or not given.strip():
        raise InvalidParameterValue("'input' must name a folder of files to score")
    if "://" in given or given.startswith("azureml:"):
        raise InvalidParameterValue(
            f"input '{given}' is not a local path; this workspace scores local folders "
            "(on the server's machine)"
        )
    path = Path(given).expanduser()
    if not path.is_absolute():
        raise InvalidParameterValue(
            f"input '{given}' must be an absolute path on the server's machine "
            "(the CLI resolves relative paths)"
        )
    if not path.is_dir():
        what = "is a file; give the folder holding it" if path.is_file() else "does not exist"
        raise InvalidParameterValue(f"input folder '{path}' {what}")
    return path.resolve()


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
