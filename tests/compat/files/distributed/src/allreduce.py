"""Sum each rank's number across the gang with gloo and check it (1 + 2 + … + world)."""

import argparse
import os

import mlflow
import torch
import torch.distributed as dist

parser = argparse.ArgumentParser()
parser.add_argument("--expect-world", type=int, required=True)
args = parser.parse_args()

dist.init_process_group("gloo")  # env://: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
rank, world = dist.get_rank(), dist.get_world_size()
value = torch.tensor([float(rank + 1)])
dist.all_reduce(value)
expected = world * (world + 1) / 2
print(
    f"rank {rank} of {world} (node {os.environ['NODE_RANK']}, local {os.environ['LOCAL_RANK']},"
    f" {os.environ.get('GLOO_SOCKET_IFNAME')}): sum {value.item():g}, expected {expected:g}"
)
assert world == args.expect_world, world
assert value.item() == expected
if rank == 0:
    mlflow.log_metric("allreduce_sum", value.item())
dist.destroy_process_group()
