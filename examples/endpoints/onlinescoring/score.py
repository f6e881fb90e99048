"""Scoring script: ``init()`` once per instance, ``run(raw_data)`` per request.

The model is a linear model kept as JSON (``model.json``) so the example needs
nothing beyond the standard library. As on Azure, ``AZUREML_MODEL_DIR`` is the
folder that holds the registered model's folder (``model-1/`` for blue,
``model-2/`` for green), so one script serves both by looking one level down.
"""

import glob
import json
import os

model = None


def init():
    global model
    (path,) = glob.glob(os.path.join(os.environ["AZUREML_MODEL_DIR"], "*", "model.json"))
    with open(path) as fh:
        model = json.load(fh)
    print(f"init: loaded a linear model with {len(model['weights'])} weights from {path}")


def run(raw_data):
    rows = json.loads(raw_data)["data"]
    digits = int(os.environ.get("SCORE_ROUND", "6"))
    return [
        round(
            sum(w * x for w, x in zip(model["weights"], row, strict=True)) + model["bias"], digits
        )
        for row in rows
    ]
