# A model registered from one file sits directly in AZUREML_MODEL_DIR.
import json
import os


def init():
    global model
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "linear.json")) as fh:
        model = json.load(fh)


def run(raw_data):
    rows = json.loads(raw_data)["data"]
    return [sum(w * x for w, x in zip(model["weights"], row)) + model["bias"] for row in rows]
