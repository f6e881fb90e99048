"""Client-side preparation of deployments, shared by the CLI and ``MLClient``.

A deployment document names things on the caller's machine — a ``code``
folder, an inline model ``path``, an environment file or a conda file path —
that the server cannot read. Before a deployment is sent, this module uploads
or inlines them: the code folder as a content-addressed snapshot (skipped when
the server already holds that digest), an inline model as a version of
``<endpoint>-<deployment>`` (a new version only when its bytes changed, so a
repeated ``update`` with the same files does not roll instances over), and
environment files as text. The YAML is checked here first, so a mistake is
reported with its file and line before anything is uploaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lapis.artifacts.snapshot import digest_files, pack, take_snapshot
from lapis.errors import InvalidParameterValue
from lapis.sdk.connection import LapisHTTP
from lapis.sdk.jobs import _environment_file
from lapis.sdk.models import upload_model
from lapis.specs.batch import parse_batch_deployment
from lapis.specs.deployment import parse_deployment
from lapis.specs.yaml_lines import Located, load, read_text_file

FINAL = ("Succeeded", "Failed")
CONTENT_TAG = "content_digest"  # on an inline model's versions: the sha256 of its files


def deployment_path(endpoint: str, name: str | None = None) -> str:
    base = f"/api/v1/endpoints/{quote(endpoint, safe='')}/deployments"
    return f"{base}/{quote(name, safe='')}" if name else base


def read_yaml(file: Path) -> Located:
    """A YAML file as a located mapping (each key keeps its line for messages)."""
    text = read_text_file(file)
    loc = load(text, str(file))
    if not isinstance(loc.data, dict):
        raise InvalidParameterValue(f"{file}: must be a mapping of settings")
    return loc


def load_deployment(
    loc: Located, endpoint: str | None = None, name: str | None = None
) -> tuple[Located, str]:
    """Check an online deployment document (with overrides) and say which endpoint it is for."""
    if isinstance(loc.data, dict):
        loc.data.update({k: v for k, v in (("name", name), ("endpoint_name", endpoint)) if v})
    spec = parse_deployment(loc)
    target = endpoint or spec.endpoint_name
    if not target:
        raise InvalidParameterValue(
            f"{loc.source}: give the endpoint: endpoint_name in the file or --endpoint-name"
        )
    return loc, target


def upload_code(http: LapisHTTP, folder: Path) -> str:
    """Upload a code folder as a snapshot unless the server has it; its digest."""
    snap = take_snapshot(folder)
    if not http.exists(f"/api/v1/snapshots/{snap.digest}"):
        http.request("PUT", f"/api/v1/snapshots/{snap.digest}", content=pack(snap))
    return snap.digest


def _environment_extras(loc: Located, base: Path, env: Any, body: dict[str, Any]) -> None:
    """Inline an environment file, or a conda file named by path, into the request body."""
    if env is None:
        return
    if env.kind == "file":
        body["environment_file"] = _environment_file(base, str(env.name), loc.source)
        return
    conda = env.conda_file
    if env.kind == "inline" and isinstance(conda, str) and "\n" not in conda:
        try:
            body["conda_file_text"] = read_text_file(base / conda, "conda file")
        except OSError as exc:
            raise loc.error(
                ("environment", "conda_file"), f"cannot read {base / conda}: {exc.strerror}"
            ) from None


def prepare_deployment(
    http: LapisHTTP, loc: Located, endpoint: str, base: Path | None = None
) -> dict[str, Any]:
    """The online deployment request body: the document plus what was uploaded for it."""
    spec = parse_deployment(loc)
    base = base or Path(loc.source).resolve().parent
    doc: dict[str, Any] = dict(loc.data)
    body: dict[str, Any] = {"source": loc.source}
    if spec.code is not None and spec.scoring_script is not None:
        code = (base / spec.code).resolve()
        if not (code / spec.scoring_script).is_file():
            raise loc.error(
                ("code_configuration", "scoring_script"),
                f"'{spec.scoring_script}' is not in the code folder {code}",
            )
        body["code_snapshot"] = upload_code(http, code)
    _environment_extras(loc, base, spec.environment, body)
    model = spec.model
    if model is not None and model.path is not None:
        local = (base / model.path).resolve()
        if not local.exists():
            raise loc.error(("model", "path"), f"'{model.path}' does not exist ({local})")
        doc["model"] = inline_model(http, f"{endpoint}-{spec.name}", model.type, local, loc)
    return {**doc, **body}


def inline_model(http: LapisHTTP, name: str, mtype: str, local: Path, loc: Located) -> str:
    """Register an inline model's files, or re-use the version already holding the same bytes."""
    if local.is_file():
        digest = digest_files(local.parent, [local.name])
    else:
        rels = [p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()]
        digest = digest_files(local, rels)
    for v in http.get("/api/v1/models", name=name)["models"]:
        if v["tags"].get(CONTENT_TAG) == digest and v["status"] == "READY":
            return f"azureml:{v['name']}:{v['version']}"
    spec = {
        "name": name,
        "type": mtype,
        "description": f"registered from {loc.source} (an inline model of a deployment)",
        "tags": {CONTENT_TAG: digest},
    }
    registered = upload_model(http, spec, local)
    return f"azureml:{registered['name']}:{registered['version']}"


def wait_deployment(
    http: LapisHTTP,
    endpoint: str,
    name: str,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Poll a deployment until it is Succeeded or Failed (``on_progress`` sees each state)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    d: dict[str, Any] = http.get(deployment_path(endpoint, name))
    while d["provisioning_state"] not in FINAL:
        if on_progress is not None:
            on_progress(d)
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(
                f"deployment {endpoint}/{name} still {d['provisioning_state']} after {timeout} s"
            )
        time.sleep(0.5)
        d = http.get(deployment_path(endpoint, name))
    return d


def prepare_batch_deployment(
    http: LapisHTTP, loc: Located, endpoint: str | None = None, base: Path | None = None
) -> tuple[dict[str, Any], str]:
    """The batch deployment request body and its endpoint; the code folder is uploaded now.
    An ``endpoint`` given here wins over the file's ``endpoint_name``, as ``az ml``'s
    ``--endpoint-name`` does."""
    if endpoint and isinstance(loc.data, dict):
        loc.data["endpoint_name"] = endpoint
    spec = parse_batch_deployment(loc)
    target = endpoint or spec.endpoint_name
    if not target:
        raise InvalidParameterValue(
            f"{loc.source}: name the endpoint with endpoint_name: in the file or --endpoint-name"
        )
    base = base or Path(loc.source).resolve().parent
    body: dict[str, Any] = {**loc.data, "source": loc.source}
    if spec.code is not None:
        body["code_snapshot"] = upload_code(http, (base / spec.code).resolve())
    _environment_extras(loc, base, spec.environment, body)
    if spec.model_path is not None:  # Azure's inline model: registered as <endpoint>-<name>
        local = (base / spec.model_path).resolve()
        if not local.exists():
            raise loc.error(("model", "path"), f"'{spec.model_path}' does not exist ({local})")
        body["model"] = inline_model(http, f"{target}-{spec.name}", spec.model_type, local, loc)
    return body, target
