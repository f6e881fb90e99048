# Azure's online scoring contract; the model is found by its folder's name.
import json
import os


def init():
    global model
    path = os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model", "model.json")
    with open(path) as fh:
        model = json.load(fh)


def run(raw_data):
    rows = json.loads(raw_data)["data"]
    return [sum(w * x for w, x in zip(model["weights"], row)) + model["bias"] for row in rows]
