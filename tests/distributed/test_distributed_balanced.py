"""train.py under torchrun with two CPU ranks (gloo): shards, one writer, consistent final model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.training.helpers import REPO, TRAIN_PY, subprocess_env, train_args


def test_two_ranks_train_and_rank0_writes_consistent_outputs(small_cifar: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    # with the class-balanced sampler and class weights: every rank draws the same balanced sweep and takes its share
    extra = ("--sampler", "balanced", "--class-weights", "balanced")
    args = train_args(small_cifar, outputs, "--batch-size", "32", "--epoch-size", "256", "--threads", "1", *extra)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        str(TRAIN_PY),
        *args,
    ]
    done = subprocess.run(
        command, cwd=REPO, env=subprocess_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    assert "128 training images" in log  # each rank reads its half of the 256-sample epoch
    assert log.count("held-out test accuracy") == 1  # rank 0 alone evaluates and writes
    metrics = json.loads((outputs / "metrics.json").read_text())
    # the exported model is the one evaluated after the last epoch (BatchNorm statistics averaged over ranks)
    assert metrics["history"][-1]["val_accuracy"] == metrics["accuracy"]
    assert metrics["onnx_check"]["max_abs_diff"] <= metrics["onnx_check"]["tolerance"]
    assert len(metrics["history"]) == 2 and metrics["history"][0]["images_per_sec"] > 0
    assert metrics["class_balance"]["sampler"] == "balanced" and len(metrics["class_balance"]["weights"]) == 10
