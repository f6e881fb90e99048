"""Batch scoring script for the house-prices example (standard library only).

Azure's batch contract: ``init()`` runs once per worker process, with
``AZUREML_MODEL_DIR`` pointing at the model's files; ``run(mini_batch)`` gets a
list of file paths and returns one element per output row (here: file name,
row number, predicted price, written to predictions.csv in input order).
"""

import csv
import json
import os
from pathlib import Path

model = None


def init():
    global model
    # registered from the folder model/: Azure keeps the folder's name
    model = json.loads((Path(os.environ["AZUREML_MODEL_DIR"]) / "model" / "model.json").read_text())


def run(mini_batch):
    rows = []
    for path in mini_batch:
        with open(path, newline="") as fh:
            for number, record in enumerate(csv.DictReader(fh)):
                price = model["intercept"] + sum(
                    weight * float(record[name]) for name, weight in model["weights"].items()
                )
                rows.append([Path(path).name, number, round(price, 2)])
    return rows
