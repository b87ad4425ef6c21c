"""Data-parallel plumbing for train.py: one process per device, started by ``torchrun``.

Why a module of its own: train.py must run unchanged as a single process (``python train.py``),
under ``torchrun --nproc_per_node N`` on one machine, and on an Azure ML cluster where
``PyTorchConfiguration`` (SDK v1) or ``distribution: pytorch`` (SDK v2) starts the processes.
All three set (or do not set) the same environment variables torchrun sets, so reading them here is
the only place that knows about launchers:

    RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT

With ``WORLD_SIZE`` > 1 :func:`setup` joins the process group (NCCL when the process trains on a
CUDA device, gloo on CPU). Otherwise every helper here is a cheap no-op, so callers never branch.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")

# Long enough for rank 0 to finish writing the ONNX export and plots while the others wait.
DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)
REQUIRED_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class DistributedSetupError(RuntimeError):
    """The launcher's environment is incomplete or inconsistent."""


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job. ``is_main`` (rank 0) alone logs and writes outputs."""

    rank: int
    world_size: int
    local_rank: int
    is_main: bool
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value)
    except ValueError:
        raise DistributedSetupError(f"environment variable {name}={value!r} is not an integer") from None


def _pick_device(requested: str | torch.device | None, local_rank: int) -> torch.device:
    """CUDA device ``local_rank`` when CUDA is available (or asked for), else the CPU."""
    if requested is not None:
        device = torch.device(requested)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", local_rank)
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def setup(device: str | torch.device | None = None, timeout: datetime.timedelta = DEFAULT_TIMEOUT) -> DistInfo:
    """Join the process group torchrun describes, or return a single-process :class:`DistInfo`.

    ``device`` overrides the automatic choice (e.g. ``"cpu"`` on a GPU machine, which also selects
    gloo). Calling it again in an initialised process returns the same answer without re-joining.
    """
    world_size = _env_int("WORLD_SIZE") if os.environ.get("WORLD_SIZE") else 1
    if world_size <= 1:
        return DistInfo(rank=0, world_size=1, local_rank=0, is_main=True, device=_pick_device(device, 0))

    missing = [name for name in REQUIRED_ENV if not os.environ.get(name)]
    if missing:
        raise DistributedSetupError(
            f"WORLD_SIZE={world_size} but {', '.join(missing)} not set; start the script with torchrun "
            "(e.g. torchrun --nproc_per_node 2 train.py ...)"
        )
    rank, local_rank = _env_int("RANK"), _env_int("LOCAL_RANK")
    if not 0 <= rank < world_size:
        raise DistributedSetupError(f"RANK={rank} is outside 0..{world_size - 1}")

    chosen = _pick_device(device, local_rank)
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    if chosen.type == "cuda" and chosen.index != local_rank % max(1, local_world) and local_world > 1:
        # NCCL refuses two ranks on one GPU ("Duplicate GPU detected") after a long wait; say why now.
        raise DistributedSetupError(
            f"device {chosen} for local rank {local_rank} of {local_world}: every process would share one GPU; "
            "pass --device cuda (or auto) so each process takes GPU LOCAL_RANK"
        )
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    backend = "nccl" if chosen.type == "cuda" else "gloo"
    if not dist.is_initialized():
        kwargs: dict[str, Any] = {"backend": backend, "init_method": "env://", "timeout": timeout}
        if backend == "nccl":
            kwargs["device_id"] = chosen  # binds the communicator now and silences barrier() warnings
        dist.init_process_group(**kwargs)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, is_main=rank == 0, device=chosen)


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def wrap_model(model: nn.Module, info: DistInfo) -> nn.Module:
    """DistributedDataParallel (gradients all-reduced in backward) when there are several ranks.

    The model must already be on ``info.device``. DDP broadcasts rank 0's initial weights, so all
    ranks start identical even if they were initialised with different seeds.
    """
    if info.world_size <= 1:
        return model
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module inside DDP, for saving weights and exporting ONNX."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def barrier() -> None:
    """Wait for every rank (e.g. until rank 0 has written the outputs)."""
    if _active():
        dist.barrier()


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Average ``tensor`` over all ranks, in place, and return it (e.g. loss or accuracy sums)."""
    if _active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= dist.get_world_size()
    return tensor


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks, in place (e.g. correct-prediction counts of each shard)."""
    if _active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def sync_buffers(model: nn.Module) -> None:
    """Average floating-point buffers (BatchNorm running statistics) over ranks; copy rank 0's others.

    DDP keeps parameters identical, but each rank's last forward pass updates its own BatchNorm
    running mean and variance (SyncBatchNorm would avoid that, but runs on GPUs only). Call this on
    every rank after the last training step, before evaluating or exporting: afterwards all ranks hold
    the same model, whose statistics are estimated from all shards rather than rank 0's alone.
    """
    if not _active():
        return
    for buffer in model.buffers():
        if buffer.is_floating_point():
            all_reduce_mean(buffer.data)
        else:
            dist.broadcast(buffer.data, src=0)


def broadcast_object(obj: T, src: int = 0) -> T:
    """Rank ``src``'s ``obj`` on every rank (any picklable object: a run id, a class list, a seed)."""
    if not _active():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def cleanup() -> None:
    """Leave the process group (call once at the end of training; safe when never joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
