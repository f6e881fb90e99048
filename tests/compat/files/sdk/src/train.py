# Fits the "model" of this sample: a weight per column, written as model/model.json.
import argparse
import json
import os

parser = argparse.ArgumentParser()
parser.add_argument("--data")
parser.add_argument("--scale", type=float)
parser.add_argument("--model")
args = parser.parse_args()

rows = [line.split(",") for line in open(args.data).read().split()[1:]]
means = [sum(float(r[i]) for r in rows) / len(rows) for i in range(len(rows[0]))]
os.makedirs(args.model, exist_ok=True)
with open(os.path.join(args.model, "model.json"), "w") as fh:
    json.dump({"weights": [args.scale * m for m in means], "bias": 0.5}, fh)
print(f"trained on {len(rows)} rows")
