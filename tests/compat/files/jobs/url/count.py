import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--data")
args = parser.parse_args()
with open(args.data) as fh:
    rows = fh.read().splitlines()
print(f"rows {len(rows) - 1} header {rows[0]}")
