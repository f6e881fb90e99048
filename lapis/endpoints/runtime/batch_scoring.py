"""What the batch driver's workers score with: the user's ``init()``/``run(mini_batch)``
or an MLflow model, and how what they return becomes output lines.

Part of the batch driver (``batch_driver.py``), shipped beside it as
``lapis_batch_scoring.py``: standard library only, Python 3.8 and later.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import sys
from pathlib import Path
from typing import Any, Callable, List, Tuple

try:
    from lapis.endpoints.runtime.mlmodel import mlmodel_root
except ImportError:  # shipped beside this file, where Lapis is not installed
    from lapis_mlmodel import mlmodel_root  # type: ignore[no-redef]

Scorer = Callable[[List[str]], Tuple[List[str], int]]  # typing.*: it runs on Python 3.8


class DriverError(Exception):
    """A problem that ends the job: bad settings, a failing init(), the error threshold."""


# --- rows -------------------------------------------------------------------------------
def _line(value: Any) -> str:
    """One returned element as one output line (CSV for several values)."""
    if isinstance(value, str):
        return value.rstrip("\r\n")
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(value)
        return buf.getvalue()
    if hasattr(value, "tolist"):  # a numpy row or scalar
        return _line(value.tolist())
    return str(value)


def to_lines(result: Any) -> list[str]:
    """What ``run()`` returned, as output lines: a list-like or a pandas DataFrame."""
    if result is None:
        raise TypeError(
            "run() returned None; return a list (one element per input file) or a pandas DataFrame"
        )
    if hasattr(result, "itertuples"):  # a pandas DataFrame
        return [_line(list(row)) for row in result.itertuples(index=False, name=None)]
    if hasattr(result, "tolist") and not isinstance(result, (list, tuple)):  # Series, ndarray
        result = result.tolist()
    if isinstance(result, (str, bytes)) or not hasattr(result, "__iter__"):
        raise TypeError(f"run() returned a {type(result).__name__}; return a list or a DataFrame")
    return [_line(value) for value in result]


# --- scorers (run in the worker processes) ---------------------------------------------
def user_scorer(script: Path) -> Scorer:
    """Import the scoring script, call its ``init()``, and wrap its ``run()``."""
    for folder in (str(script.parent), os.getcwd()):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(script.stem, script)
    if spec is None or spec.loader is None:
        raise DriverError(f"cannot import the scoring script {script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[script.stem] = module
    spec.loader.exec_module(module)
    run = getattr(module, "run", None)
    if not callable(run):
        raise DriverError(f"the scoring script {script.name} has no run(mini_batch) function")
    init = getattr(module, "init", None)
    if callable(init):
        init()

    def score(files: list[str]) -> tuple[list[str], int]:
        lines = to_lines(run(list(files)))
        return lines, max(0, len(files) - len(lines))

    return score


def mlflow_scorer(model_dir: Path) -> Scorer:
    """Score CSV/Parquet files with ``mlflow.pyfunc`` (no scoring script given)."""
    try:
        import mlflow.pyfunc
        import pandas as pd
    except ImportError as exc:
        raise DriverError(
            "this deployment has no scoring script, so its MLflow model is scored with "
            f"mlflow.pyfunc, but the environment cannot import it ({exc}); add mlflow and "
            "pandas to the deployment's environment, or give code_configuration"
        ) from None
    model = mlflow.pyfunc.load_model(str(mlmodel_root(model_dir)))

    def score(files: list[str]) -> tuple[list[str], int]:
        lines: list[str] = []
        for name in files:
            suffix = Path(name).suffix.lower()
            if suffix == ".parquet":
                frame = pd.read_parquet(name)
            elif suffix in (".csv", ".txt", ".tsv"):
                frame = pd.read_csv(name, sep="\t" if suffix == ".tsv" else ",")
            else:
                raise ValueError(f"{Path(name).name}: MLflow batch scoring reads CSV or Parquet")
            predictions = model.predict(frame)
            rows = predictions.values.tolist() if hasattr(predictions, "values") else predictions
            if hasattr(rows, "tolist"):
                rows = rows.tolist()
            for row in rows:
                values = row if isinstance(row, list) else [row]
                lines.append(_line([Path(name).name, *values]))
        return lines, 0

    return score
