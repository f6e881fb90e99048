# Azure's batch contract: one output row per input file.
import json
import os
from pathlib import Path


def init():
    global model
    path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "model.json")
    model = json.loads(Path(path).read_text())


def run(mini_batch):
    out = []
    for p in mini_batch:
        row = [float(v) for v in Path(p).read_text().split(",")]
        score = sum(w * x for w, x in zip(model["weights"], row)) + model["bias"]
        out.append(f"{Path(p).name},{score}")
    return out
