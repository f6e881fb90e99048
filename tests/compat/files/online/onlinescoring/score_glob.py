# Azure's other idiom: whatever folder was registered, it is the one below AZUREML_MODEL_DIR.
import glob
import json
import os


def init():
    global model
    (folder,) = glob.glob(os.getenv("AZUREML_MODEL_DIR") + "/*/")
    with open(os.path.join(folder, "model.json")) as fh:
        model = json.load(fh)


def run(raw_data):
    rows = json.loads(raw_data)["data"]
    return [sum(w * x for w, x in zip(model["weights"], row)) + model["bias"] for row in rows]
