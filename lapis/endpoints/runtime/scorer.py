"""What the scoring server scores: the user's ``init()``/``run()`` or an MLflow model.

Part of the scoring server (``scoring.py``), shipped beside it as ``lapis_scorer.py``:
standard library only, Python 3.8 and later. ``Batcher`` merges concurrent requests
for MLflow models whose predictions are row by row.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import queue
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, Callable, Tuple

try:
    from lapis.endpoints.runtime.mlmodel import mlmodel_root
except ImportError:  # shipped beside this file, where Lapis is not installed
    from lapis_mlmodel import mlmodel_root  # type: ignore[no-redef]


class Scorer:
    """Loads the user's code (or an MLflow model) once, then scores requests."""

    def __init__(self, model_dir: str, script: str | None, mlflow_model: bool) -> None:
        self.model_dir = model_dir
        self.script = script
        self.mlflow_model = mlflow_model
        self.ready = threading.Event()
        self.failed: str | None = None
        self._run: Any = None
        self._model: Any = None
        self.max_batch = 1  # > 1: MLflow requests are scored together (see Batcher)

    def load(self) -> None:
        os.environ["AZUREML_MODEL_DIR"] = self.model_dir
        try:
            if self.script:
                path = Path(self.script).resolve()
                sys.path.insert(0, str(path.parent))
                spec = importlib.util.spec_from_file_location("score", path)
                if spec is None or spec.loader is None:
                    raise RuntimeError(f"cannot import scoring script {path}")
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                for name in ("init", "run"):
                    if not callable(getattr(module, name, None)):
                        raise RuntimeError(f"scoring script {path.name} has no {name}() function")
                module.init()
                self._run = module.run
            elif self.mlflow_model:
                import mlflow.pyfunc

                self._model = mlflow.pyfunc.load_model(str(mlmodel_root(Path(self.model_dir))))
                self.max_batch = batch_size(set(self._model.metadata.flavors))
            else:
                raise RuntimeError("nothing to serve: give --scoring-script or --mlflow-model")
        except Exception:
            self.failed = traceback.format_exc()
            sys.stderr.write(f"init failed:\n{self.failed}")
            sys.stderr.flush()
            return
        self.ready.set()
        sys.stderr.write("ready\n")
        sys.stderr.flush()

    def score(self, raw: bytes) -> Any:
        if self._run is not None:
            return self._run(raw.decode("utf-8", errors="replace"))
        return self._score_mlflow(json.loads(raw))

    def _score_mlflow(self, body: Any) -> Any:
        import pandas as pd

        if not isinstance(body, dict):
            raise ValueError("expected a JSON object with input_data, dataframe_split or inputs")
        if "input_data" in body:
            data = body["input_data"]
            if isinstance(data, dict) and "data" in data:
                frame = pd.DataFrame(
                    data["data"], columns=data.get("columns"), index=data.get("index")
                )
            else:
                frame = pd.DataFrame(data)
        elif "dataframe_split" in body:
            split = body["dataframe_split"]
            frame = pd.DataFrame(split["data"], columns=split.get("columns"))
        elif "inputs" in body:
            frame = pd.DataFrame(body["inputs"])
        else:
            raise ValueError(
                "expected one of input_data, dataframe_split or inputs; got "
                + ", ".join(sorted(body))
            )
        result = self._model.predict(frame)
        return result.tolist() if hasattr(result, "tolist") else result


def score_request(scorer: Scorer, raw: bytes, request_id: str) -> tuple[int, bytes]:
    """Run one request through the model (in a worker thread); never raises."""
    try:
        result = scorer.score(raw)
        return 200, json.dumps(result).encode()
    except (json.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
        if scorer._run is None:  # an MLflow model refused the input: the caller's mistake
            error = {"error": f"bad request: {exc}", "request_id": request_id}
            return 400, json.dumps(error).encode()
        return _failed(request_id)  # the user's run() raised: their bug, not the input
    except Exception:
        return _failed(request_id)


def _failed(request_id: str) -> tuple[int, bytes]:
    sys.stderr.write(f"request {request_id} failed:\n{traceback.format_exc()}")
    sys.stderr.flush()
    body = {
        "error": "the scoring script raised an error; see the deployment log",
        "request_id": request_id,
    }
    return 500, json.dumps(body).encode()


def malformed_json(headers: dict[str, str], body: bytes, scorer: Scorer) -> str | None:
    """Why a body declared as JSON does not parse, for scoring-script deployments.

    A scoring script gets the raw body, so a broken JSON body would surface as
    its ``json.loads`` raising — a 500 that blames the script for the caller's
    mistake. Checking here answers 400 with the parser's reason instead.
    MLflow models parse the body themselves and already answer 400.
    """
    if scorer.script is None or "json" not in headers.get("content-type", ""):
        return None
    try:
        json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        return str(exc)
    return None


ROW_WISE_FLAVORS = frozenset({"sklearn", "xgboost", "lightgbm", "catboost"})
DEFAULT_MAX_BATCH = 64


def batch_size(flavors: set[str]) -> int:
    """How many requests an MLflow model may score at once: 1 means one at a time.

    Batching is only safe when predictions are row by row (each row's answer
    depends on that row alone), which the flavors above guarantee;
    ``$LAPIS_SCORING_MAX_BATCH`` overrides (1 turns batching off, N > 1 turns
    it on for any MLflow model).
    """
    given = os.environ.get("LAPIS_SCORING_MAX_BATCH")
    if given:
        return max(1, int(given))
    return DEFAULT_MAX_BATCH if flavors & ROW_WISE_FLAVORS else 1


def table_of(body: Any) -> tuple[tuple[Any, ...], list[Any]] | None:
    """(columns, rows) of a split-oriented payload, or None when it cannot be merged."""
    if not isinstance(body, dict) or len(body) != 1:
        return None
    split = body.get("dataframe_split", body.get("input_data"))
    if not isinstance(split, dict) or "index" in split:
        return None
    columns, rows = split.get("columns"), split.get("data")
    if not isinstance(columns, list) or not isinstance(rows, list) or not rows:
        return None
    if not all(isinstance(r, list) and len(r) == len(columns) for r in rows):
        return None
    return tuple(columns), rows


Done = Callable[[Tuple[int, bytes]], None]  # typing.*: it runs on Python 3.8


class Batcher:
    """Server-side micro-batching for MLflow models whose predictions are row-wise.

    Requests queue here and one thread scores them: it takes the first, then
    whatever else is already waiting (up to ``max_batch``) — no waiting for a
    batch to fill, so a lone request is never delayed. Requests with the same
    columns become one DataFrame and one ``predict`` call, whose rows are split
    back per request: per-call costs (schema enforcement, DataFrame building)
    are paid once per batch instead of once per request. Anything that cannot
    be merged, or a batch whose ``predict`` fails, is scored one request at a
    time, so each caller still gets its own answer or its own error.
    """

    def __init__(self, scorer: Scorer, loop: asyncio.AbstractEventLoop) -> None:
        self.scorer = scorer
        self.loop = loop
        self.queue: queue.SimpleQueue[tuple[bytes, str, Done]] = queue.SimpleQueue()
        self.batches = 0  # predict calls on merged requests, and the requests they answered
        self.batched = 0
        threading.Thread(target=self._serve, name="batcher", daemon=True).start()

    def submit(self, raw: bytes, request_id: str, done: Done) -> None:
        """Score ``raw``; ``done((status, body))`` is called on the event loop."""
        self.queue.put((raw, request_id, done))

    def _serve(self) -> None:
        while True:
            items = [self.queue.get()]
            while len(items) < self.scorer.max_batch:
                try:
                    items.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            results = self._score(items)
            self.loop.call_soon_threadsafe(_deliver, results)

    def _score(self, items: list[tuple[bytes, str, Done]]) -> list[tuple[Done, tuple[int, bytes]]]:
        out: list[tuple[Done, tuple[int, bytes]]] = []
        groups: dict[tuple[Any, ...], list[tuple[list[Any], str, bytes, Done]]] = {}
        for raw, request_id, done in items:
            try:
                table = table_of(json.loads(raw)) if len(items) > 1 else None
            except ValueError:
                table = None
            if table is None:
                out.append((done, score_request(self.scorer, raw, request_id)))
            else:
                groups.setdefault(table[0], []).append((table[1], request_id, raw, done))
        for columns, members in groups.items():
            out += self._predict_together(columns, members)
        return out

    def _predict_together(
        self, columns: tuple[Any, ...], members: list[tuple[list[Any], str, bytes, Done]]
    ) -> list[tuple[Done, tuple[int, bytes]]]:
        import pandas as pd

        rows = [row for member in members for row in member[0]]
        try:
            frame = pd.DataFrame(rows, columns=list(columns))
            result = self.scorer._model.predict(frame)
            values = result.tolist() if hasattr(result, "tolist") else None
            if not isinstance(values, list) or len(values) != len(rows):
                raise ValueError("predictions do not match the rows one to one")
        except Exception:  # one bad request must not fail the others: score each alone
            return [(done, score_request(self.scorer, raw, rid)) for _, rid, raw, done in members]
        out = []
        start = 0
        for member_rows, _, _, done in members:
            stop = start + len(member_rows)
            out.append((done, (200, json.dumps(values[start:stop]).encode())))
            start = stop
        self.batches += 1
        self.batched += len(members)
        return out


def _deliver(results: list[tuple[Done, tuple[int, bytes]]]) -> None:
    for done, result in results:
        done(result)
