"""Materialising one generation of a deployment: model, code, scoring server, interpreter.

Everything an instance runs is copied under
``$LAPIS_HOME/deployments/<endpoint>/<deployment>/g<generation>/`` —
``model/`` (downloaded from the artifact store), ``code/`` (the uploaded
snapshot) and ``lapis_scoring.py`` (a copy of ``lapis.endpoints.runtime.scoring``, the
standard-library scoring server) — so a running generation never changes
under its instances and the next one can be prepared beside it. A ``.ready``
marker makes the work happen once: a restarted server reuses the folder.

The interpreter is Lapis' own for ``system`` environments (and for an MLflow
model without one: Lapis ships mlflow); otherwise the environment is built
with uv into the shared, digest-keyed cache, exactly as jobs build theirs.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lapis.artifacts.snapshot import check_digest
from lapis.endpoints import runtime
from lapis.endpoints.control.deployments import DeploymentService
from lapis.errors import LapisError
from lapis.specs.environment import EnvironmentSpec
from lapis.store.sql.deployments import OnlineDeployment

READY = ".ready"
# The server's own credentials are not the scoring code's business.
PRIVATE_ENV = ("LAPIS_TOKEN", "MLFLOW_TRACKING_TOKEN", "VIRTUAL_ENV")


@dataclass(frozen=True)
class Prepared:
    """How to start an instance of one generation (the port arguments are added per start)."""

    generation: int
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    # (denied, allowed) trees for the instance's Landlock sandbox (lapis/compute/sandbox.py):
    # the home is out of reach but for this deployment's folder and the environments.
    sandbox: tuple[tuple[str, ...], tuple[str, ...]] | None = None


class PrepareError(LapisError):
    """Materialising or building failed; the message is the deployment's state reason."""


def prepare(svc: DeploymentService, d: OnlineDeployment, log: Callable[[str], None]) -> Prepared:
    """Materialise generation ``d.generation`` (once) and say how to start its instances."""
    base = svc.folder(d) / f"g{d.generation}"
    model, code = d.spec["model"], d.spec["code"]
    if not (base / READY).exists():
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        try:  # laid out as Azure does: $AZUREML_MODEL_DIR/<registered folder>/…
            where, count = svc.models.materialize(model["name"], model["version"], base / "model")
        except LapisError as exc:
            label = f"{model['name']}:{model['version']}"
            raise PrepareError(f"cannot fetch model {label}: {exc.message}") from None
        log(f"model {model['name']}:{model['version']}: {count} file(s) in {where}")
        if code is not None:
            snapshot = svc.snapshots / check_digest(code["digest"])
            if not snapshot.is_dir():
                raise PrepareError(f"code snapshot {code['digest'][:12]} is missing on this server")
            shutil.copytree(snapshot, base / "code")
        (base / READY).touch()
    server = runtime.ship(runtime.SCORING, base)  # this server's scoring server
    python, venv = _interpreter(svc, d, log)
    argv = [python, str(server), "--host", "127.0.0.1"]
    argv += ["--model-dir", str(base / "model")]
    env = {k: v for k, v in os.environ.items() if k not in PRIVATE_ENV}
    env.update(d.spec["doc"].get("environment_variables") or {})
    env["AZUREML_MODEL_DIR"] = str(base / "model")
    env["PYTHONUNBUFFERED"] = "1"
    if code is not None:
        script = base / "code" / code["scoring_script"]
        argv += ["--scoring-script", str(script)]
        env["AZUREML_ENTRY_SCRIPT"] = code["scoring_script"]
    else:
        argv.append("--mlflow-model")
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    cwd = base / "code" if code is not None else base
    env["TMPDIR"] = str(svc.folder(d) / "tmp")
    Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    box = (
        (str(svc.home),),
        (str(svc.folder(d)), str(svc.environments.envs_root)),
    )
    return Prepared(d.generation, argv, env, cwd, box if svc.sandbox else None)


def _interpreter(
    svc: DeploymentService, d: OnlineDeployment, log: Callable[[str], None]
) -> tuple[str, Path | None]:
    """Lapis' python for a system environment, else the uv-built one (and its folder)."""
    env = d.spec["environment"]
    envs = svc.environments
    if env["kind"] != "built" or not env.get("spec"):  # a thin layer over Lapis' interpreter
        try:
            layered = envs.builder.layered(sys.executable)
        except Exception as exc:
            raise PrepareError(f"the layered system environment failed: {exc}") from None
        return str(layered.python), layered.path
    spec = EnvironmentSpec(
        python=env["spec"].get("python"),
        requirements=tuple(env["spec"].get("requirements") or ()),
        conda_only=tuple(env["spec"].get("conda") or ()),
    )
    log_path = envs.log_path(spec.digest)
    if not (envs.builder.path_for(spec) / ".lapis-ready").exists():
        log(f"building environment {env['label']} ({spec.digest[:12]}); log: {log_path}")
        envs.record_build(spec.digest, "Building", log_path=log_path)
    try:
        built = envs.builder.ensure(spec, log=lambda line: log(f"  {line}"))
    except LapisError as exc:
        envs.record_build(spec.digest, "Failed", error=exc.message, log_path=log_path)
        raise PrepareError(f"environment {env['label']} failed to build: {exc.message}") from None
    envs.record_build(spec.digest, "Succeeded", log_path=log_path, python=built.python)
    how = "reused cached" if built.cache_hit else "built"
    log(f"environment {env['label']}: {how} in {built.seconds:.1f} s")
    return str(built.python), built.path
