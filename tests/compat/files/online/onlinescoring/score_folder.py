# The way Azure's samples read a model registered from a folder: the folder's
# name is part of the path under AZUREML_MODEL_DIR.
import json
import os


def init():
    global model
    model_path = os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model/model.json")
    with open(model_path) as fh:
        model = json.load(fh)


def run(raw_data):
    rows = json.loads(raw_data)["data"]
    return [sum(w * x for w, x in zip(model["weights"], row)) + model["bias"] for row in rows]
