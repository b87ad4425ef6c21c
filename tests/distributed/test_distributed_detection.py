"""Detection under torchrun: 2 gloo processes train a Faster R-CNN on real coco-tiny images.

DDP averages the gradients, so both ranks must end with the same parameters; only rank 0 writes the
outputs (metrics.json with COCOeval figures, a checked model.onnx). Small inputs keep it to about a
minute on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from amlvision.testing.detection import COCO_TINY, coco_subset

REPO = Path(__file__).resolve().parents[2]
CAPTURE = Path(__file__).with_name("train_capture.py")


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (COCO_TINY / "train2017").is_dir():
        pytest.fail(f"{COCO_TINY} is missing (shared data)")
    work = tmp_path_factory.mktemp("ddp-detection")
    data = coco_subset(work / "coco")
    (work / "weights").mkdir()
    args = ["--data", f"coco:{data}", "--outputs", str(work / "out"), "--epochs", "2", "--batch-size", "1"]
    args += ["--min-size", "128", "--max-size", "192", "--threads", "1", "--device", "cpu", "--progress", "log"]
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
        + [str(CAPTURE), str(work / "weights"), *args],
        cwd=REPO,
        env=dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return work


def test_both_ranks_end_with_the_same_parameters(ddp_run: Path) -> None:
    rank0 = torch.load(ddp_run / "weights" / "rank0.pt")
    rank1 = torch.load(ddp_run / "weights" / "rank1.pt")
    initial = torch.load(ddp_run / "weights" / "rank0.initial.pt")
    params = [k for k in rank0 if rank0[k].is_floating_point() and "running" not in k]
    assert params and rank0.keys() == rank1.keys()
    for key in params:
        torch.testing.assert_close(rank0[key], rank1[key], rtol=0, atol=1e-6, msg=key)
    assert any(not torch.equal(rank0[k], initial[k]) for k in params)  # it trained


def test_rank0_writes_the_outputs(ddp_run: Path) -> None:
    metrics = json.loads((ddp_run / "out" / "metrics.json").read_text())
    assert metrics["task"] == "detection" and len(metrics["history"]) == 2
    assert {"AP", "AP50", "AR100"} <= set(metrics)
    assert metrics["export"]["exported"] and (ddp_run / "out" / "model.onnx").is_file()
