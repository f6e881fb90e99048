"""Where an MLflow model is inside ``AZUREML_MODEL_DIR``; shared by the child programs.

Standard library only (it runs in users' environments, Python 3.8 included).
"""

from __future__ import annotations

from pathlib import Path


def mlmodel_root(model_dir: Path) -> Path:
    """Where the MLflow model is: ``AZUREML_MODEL_DIR`` holds the registered folder, so
    its ``MLmodel`` is one level down (or at the top, for a model fetched before that)."""
    if (model_dir / "MLmodel").is_file():
        return model_dir
    found = sorted(p.parent for p in model_dir.glob("*/MLmodel"))
    found += sorted(p.parent for p in model_dir.glob("*/*/MLmodel"))
    if not found:
        raise RuntimeError(f"no MLmodel file under {model_dir}: this is not an MLflow model")
    return found[0]
