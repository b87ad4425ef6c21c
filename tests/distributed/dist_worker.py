"""One rank of the two-process gloo test, started by test_distributed_helpers.py with torchrun's env vars.

Writes what it saw to ``<out>/rank<R>.json`` so the test (in the parent process) can compare ranks.
"""

from __future__ import annotations

import copy
import json
import sys

import torch
from torch import nn

from amlvision.training import distributed


def shard(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank ``rank``'s 8 samples of step ``step``; any process can recompute any rank's shard."""
    generator = torch.Generator().manual_seed(1000 * step + rank)
    return torch.randn(8, 4, generator=generator), torch.randint(0, 3, (8,), generator=generator)


def main(out_dir: str) -> None:
    torch.set_num_threads(1)
    info = distributed.setup()
    # Different seeds per rank: DDP must still make the start weights identical (broadcast from rank 0).
    torch.manual_seed(100 + info.rank)
    model = nn.Linear(4, 3)
    ddp = distributed.wrap_model(model, info)
    reference = copy.deepcopy(model)  # rank 0's start weights, trained below as ONE process on the union
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
    ref_optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    for step in range(3):
        x, y = shard(info.rank, step)
        optimizer.zero_grad()
        nn.functional.cross_entropy(ddp(x), y).backward()
        optimizer.step()
        # Single process, global batch = both shards (16 samples).
        xs, ys = zip(*(shard(r, step) for r in range(info.world_size)), strict=True)
        ref_optimizer.zero_grad()
        nn.functional.cross_entropy(reference(torch.cat(xs)), torch.cat(ys)).backward()
        ref_optimizer.step()
    vs_single = max((a - b).abs().max().item() for a, b in zip(model.parameters(), reference.parameters(), strict=True))

    # BatchNorm: the last forward updates each rank's running statistics from its own shard.
    bn = nn.BatchNorm1d(3)
    bn_ddp = distributed.wrap_model(bn, info)
    bn_ddp(shard(info.rank, 9)[0][:, :3])
    stats_before = bn.running_mean.tolist()
    distributed.sync_buffers(bn)

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
        "max_abs_diff_vs_single_process": vs_single,
        "buffers_before_sync": stats_before,
        "buffers": [b.detach().flatten().tolist() for b in bn.buffers()],
        "mean": mean.item(),
        "sum": total.item(),
        "token": token,
    }
    with open(f"{out_dir}/rank{info.rank}.json", "w") as f:
        json.dump(record, f)
    distributed.cleanup()


if __name__ == "__main__":
    main(sys.argv[1])
