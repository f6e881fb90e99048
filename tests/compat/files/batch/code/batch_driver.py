# Azure's batch contract: init() once per worker, run(mini_batch) per mini-batch.
# The model is found under AZUREML_MODEL_DIR by its registered folder's name, and
# a file of the script's own goes to AZUREML_BI_OUTPUT_PATH.
import json
import os
from pathlib import Path


def init():
    global factor, output_path
    model_path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "factor.json")
    with open(model_path) as fh:
        factor = json.load(fh)["factor"]
    output_path = os.environ["AZUREML_BI_OUTPUT_PATH"]


def run(mini_batch):
    results = []
    for file_path in mini_batch:
        value = int(Path(file_path).read_text())
        results.append(f"{Path(file_path).name},{value * factor}")
    with open(os.path.join(output_path, "seen-by-script.txt"), "a") as fh:
        fh.write("".join(f"{Path(p).name}\n" for p in mini_batch))
    return results
