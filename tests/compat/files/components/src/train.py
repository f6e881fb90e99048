import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--training_data")
parser.add_argument("--max_epochs", type=int)
parser.add_argument("--learning_rate", type=float)
parser.add_argument("--learning_rate_schedule")
parser.add_argument("--warm_start")
parser.add_argument("--model_output")
args = parser.parse_args()
os.makedirs(args.model_output, exist_ok=True)
with open(os.path.join(args.model_output, "model.txt"), "w") as fh:
    fh.write(f"epochs={args.max_epochs} lr={args.learning_rate}\n")
