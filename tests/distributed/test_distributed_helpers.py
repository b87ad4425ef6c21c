"""amlvision.training.distributed with two real gloo processes on loopback, plus the single-process path."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from amlvision.training import distributed

WORKER = Path(__file__).with_name("dist_worker.py")
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch_two_ranks(out_dir: Path) -> list[dict]:
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(
            os.environ,
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            LOCAL_WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            CUDA_VISIBLE_DEVICES="",
            OMP_NUM_THREADS="1",
            PYTHONPATH=str(REPO),
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKER), str(out_dir)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    for proc in procs:
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, output
    return [json.loads((out_dir / f"rank{r}.json").read_text()) for r in range(2)]


def test_two_gloo_ranks_agree(tmp_path: Path) -> None:
    rank0, rank1 = _launch_two_ranks(tmp_path)
    assert (rank0["rank"], rank1["rank"]) == (0, 1)
    assert rank0["is_main"] and not rank1["is_main"]
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["backend"] == rank1["backend"] == "gloo"
    assert rank0["device"] == rank1["device"] == "cpu"
    assert rank0["wrapped"] == "DistributedDataParallel"
    # Different seeds and different data per rank, yet identical weights after three steps.
    assert rank0["weights"] == rank1["weights"]
    # ...and the same weights as one process stepping on the union of the shards (equal global batch).
    assert rank0["max_abs_diff_vs_single_process"] < 1e-6
    # BatchNorm running statistics differ after the last step until sync_buffers averages them.
    assert rank0["buffers_before_sync"] != rank1["buffers_before_sync"]
    assert rank0["buffers"] == rank1["buffers"]
    average = [(a + b) / 2 for a, b in zip(rank0["buffers_before_sync"], rank1["buffers_before_sync"], strict=True)]
    assert rank0["buffers"][0] == pytest.approx(average)
    assert rank0["mean"] == rank1["mean"] == pytest.approx(1.5)
    assert rank0["sum"] == rank1["sum"] == 3
    assert rank0["token"] == rank1["token"] == {"run_id": "from-rank-0"}


def test_ddp_step_equals_single_process_step_on_the_union_of_shards() -> None:
    """Averaged shard gradients == the gradient of the whole batch: the basis of equal-global-batch runs."""
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    full = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), model.weight)[0]
    shards = [
        torch.autograd.grad(nn.functional.cross_entropy(model(x[i::2]), y[i::2]), model.weight)[0] for i in range(2)
    ]
    torch.testing.assert_close((shards[0] + shards[1]) / 2, full)


def test_single_process_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    info = distributed.setup(device="cpu")
    assert (info.rank, info.world_size, info.local_rank, info.is_main) == (0, 1, 0, True)
    assert info.device == torch.device("cpu") and not info.distributed
    model = nn.Linear(2, 2)
    assert distributed.wrap_model(model, info) is model
    t = torch.tensor([3.0])
    assert distributed.all_reduce_mean(t).item() == 3.0
    assert distributed.broadcast_object({"a": 1}) == {"a": 1}
    distributed.barrier()
    distributed.cleanup()
    assert not torch.distributed.is_initialized()


def test_incomplete_launcher_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    with pytest.raises(distributed.DistributedSetupError, match="LOCAL_RANK, MASTER_ADDR, MASTER_PORT not set"):
        distributed.setup()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(distributed.DistributedSetupError, match="WORLD_SIZE='two'"):
        distributed.setup()


def test_one_gpu_for_every_local_rank_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "RANK": "1",
        "LOCAL_RANK": "1",
        "WORLD_SIZE": "2",
        "LOCAL_WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29500",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(distributed.DistributedSetupError, match="every process would share one GPU"):
        distributed.setup(device="cuda:0")
