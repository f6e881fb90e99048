import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--seed", type=int, default=None)
parser.add_argument("--epochs", type=int, default=None)
args = parser.parse_args()
print(f"lr={args.lr} seed={args.seed} epochs={args.epochs}")
