"""Packaging a model as a self-contained Docker build context.

The context holds everything a Docker host needs and nothing of Lapis: the
model files, the scoring code, a requirements file, and the scoring server
itself (``runtime.py``, standard library only, copied in as
``lapis_scoring.py``). ``docker build`` needs no network access to Lapis, and
``python lapis_scoring.py …`` runs the same server without Docker at all —
which is how the tests check a context is complete.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from lapis.endpoints import runtime
from lapis.endpoints.runtime.mlmodel import mlmodel_root
from lapis.errors import InvalidParameterValue

PORT = 5001


@dataclass
class PackageSpec:
    model_label: str  # "name:version", recorded in the image's labels
    model_dir: Path
    code_dir: Path | None = None
    scoring_script: str | None = None  # relative to code_dir
    requirements: list[str] = field(default_factory=list)
    python: str | None = None
    image: str | None = None


def _mlflow_requirements(model_dir: Path) -> list[str]:
    req = model_dir / "requirements.txt"
    if not req.is_file():
        return ["mlflow-skinny", "pandas"]
    lines = [line.strip() for line in req.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith(("#", "-"))]


def write_context(spec: PackageSpec, out: Path) -> list[Path]:
    """Write the build context into ``out`` (which must be empty or absent)."""
    if out.exists() and any(out.iterdir()):
        raise InvalidParameterValue(f"{out} is not empty; choose a new --output-path")
    try:  # the registered folder sits inside the model dir, as in AZUREML_MODEL_DIR
        mlflow_root: Path | None = mlmodel_root(spec.model_dir)
    except RuntimeError:
        mlflow_root = None
    mlflow_model = mlflow_root is not None
    if spec.scoring_script is None and not mlflow_model:
        raise InvalidParameterValue(
            f"model {spec.model_label} is not an MLflow model (no MLmodel file): "
            "give --scoring-script (and --code) with init() and run(raw_data)"
        )
    script = spec.scoring_script
    if script is not None and (spec.code_dir is None or not (spec.code_dir / script).is_file()):
        where = spec.code_dir or "the --code folder"
        raise InvalidParameterValue(f"scoring script {script} not found in {where}")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(spec.model_dir, out / "model")
    if spec.code_dir is not None:
        shutil.copytree(
            spec.code_dir, out / "code", ignore=shutil.ignore_patterns("__pycache__", ".git")
        )
    runtime.ship(runtime.SCORING, out)
    requirements = list(spec.requirements)
    if spec.scoring_script is None:
        assert mlflow_root is not None
        requirements += [r for r in _mlflow_requirements(mlflow_root) if r not in requirements]
    (out / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
    serve = ["python", "/app/lapis_scoring.py", "--host", "0.0.0.0", "--port", str(PORT)]
    serve += ["--model-dir", "/app/model"]
    if spec.scoring_script is not None:
        serve += ["--scoring-script", f"/app/code/{spec.scoring_script}"]
    else:
        serve += ["--mlflow-model"]
    base = spec.image or f"python:{spec.python or '3.11'}-slim"
    lines = [
        f"# Model {spec.model_label}, packaged by Lapis. Build: docker build -t my-model .",
        f"FROM {base}",
        f'LABEL org.lapis.model="{spec.model_label}"',
        "WORKDIR /app",
        "COPY requirements.txt /app/requirements.txt",
        "RUN pip install --no-cache-dir -r /app/requirements.txt",
        "COPY model/ /app/model/",
    ]
    if spec.code_dir is not None:
        lines.append("COPY code/ /app/code/")
    lines += [
        *(f"COPY {name} /app/{name}" for name in runtime.shipped_names(runtime.SCORING)),
        "ENV AZUREML_MODEL_DIR=/app/model",
        f"EXPOSE {PORT}",
        'HEALTHCHECK CMD python -c "import urllib.request as u; '
        f"u.urlopen('http://127.0.0.1:{PORT}/ready')\"",
        f"CMD {json.dumps(serve)}",
    ]
    (out / "Dockerfile").write_text("\n".join(lines) + "\n")
    (out / ".dockerignore").write_text("**/__pycache__\n")
    run_local = " ".join(a.replace("/app/", "") for a in serve[1:]).replace("0.0.0.0", "127.0.0.1")
    (out / "README.md").write_text(
        f"# {spec.model_label}\n\n"
        "```bash\n"
        "docker build -t my-model . && docker run -p 5001:5001 my-model\n"
        f"curl -X POST localhost:{PORT}/score -H 'Content-Type: application/json' "
        "-d @request.json\n"
        "```\n\n"
        "Without Docker (after `pip install -r requirements.txt`):\n\n"
        f"```bash\npython {run_local}\n```\n"
    )
    meta = {
        "model": spec.model_label,
        "scoring_script": spec.scoring_script,
        "mlflow_model": spec.scoring_script is None,
        "base_image": base,
        "requirements": requirements,
        "command": serve,
    }
    (out / "lapis-package.json").write_text(json.dumps(meta, indent=2) + "\n")
    return sorted(p for p in out.rglob("*") if p.is_file())
