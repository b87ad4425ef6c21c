"""One rank of the two-process gloo test, started by test_distributed_helpers.py with torchrun's env vars.

Writes what it saw to ``<out>/rank<R>.json`` so the test (in the parent process) can compare ranks.
"""

from __future__ import annotations

import json
import sys

import torch
from torch import nn

from amlvision.training import distributed


def main(out_dir: str) -> None:
    torch.set_num_threads(1)
    info = distributed.setup()
    # Different seeds per rank: DDP must still make the start weights identical (broadcast from rank 0).
    torch.manual_seed(100 + info.rank)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    ddp = distributed.wrap_model(model, info)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
    # Each rank sees a different shard of data; the all-reduced gradient must keep weights identical.
    generator = torch.Generator().manual_seed(7 + info.rank)
    for _ in range(3):
        x = torch.randn(8, 4, generator=generator)
        y = torch.randint(0, 3, (8,), generator=generator)
        optimizer.zero_grad()
        nn.functional.cross_entropy(ddp(x), y).backward()
        optimizer.step()

    # The last forward updated each rank's BatchNorm statistics from its own shard.
    stats_before = model[1].running_mean.tolist()
    distributed.sync_buffers(model)
    mean = distributed.all_reduce_mean(torch.tensor([float(info.rank + 1)]))
    total = distributed.all_reduce_sum(torch.tensor([info.rank + 1]))
    token = distributed.broadcast_object({"run_id": f"from-rank-{info.rank}"})
    distributed.barrier()
    record = {
        "rank": info.rank,
        "world_size": info.world_size,
        "local_rank": info.local_rank,
        "is_main": info.is_main,
        "device": str(info.device),
        "wrapped": type(ddp).__name__,
        "backend": torch.distributed.get_backend(),
        "weights": [p.detach().flatten().tolist() for p in distributed.unwrap_model(ddp).parameters()],
        "buffers_before_sync": stats_before,
        "buffers": [b.detach().flatten().tolist() for b in model.buffers()],
        "mean": mean.item(),
        "sum": total.item(),
        "token": token,
    }
    with open(f"{out_dir}/rank{info.rank}.json", "w") as f:
        json.dump(record, f)
    distributed.cleanup()


if __name__ == "__main__":
    main(sys.argv[1])
