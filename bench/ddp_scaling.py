"""Data-parallel scaling of train.py on this machine: 1 process vs N processes under torchrun (gloo on CPU).

Both runs use the same global batch (N x B vs 1 x N*B) and the same total CPU threads
(``--threads`` per process = total / N), on the CIFAR-10 subset from ../shared/data. Prints one JSON
line per run and the ratio of training images/s (N processes over 1 process: the baseline on the
same machine, measured in the same invocation). Read the ratio with the machine's load in mind: on a
busy shared machine N processes also win a larger share of the CPU than one process, so the ratio
overstates what data parallelism itself buys; it is the place to see whether the gloo all-reduce
costs more than it saves.

    python bench/ddp_scaling.py                 # 2 processes, 1 epoch on 1,500 images
    python bench/ddp_scaling.py --nproc 4 --epochs 2 --threads 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from amlvision.testing.datasets import cifar10_png_subset  # noqa: E402


def run(nproc: int, per_process_batch: int, threads: int, data: Path, epochs: int, out: Path) -> dict:
    launcher = (
        [sys.executable]
        if nproc == 1
        else [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    )
    cmd = [
        *launcher,
        str(REPO / "train.py"),
        "--data",
        str(data),
        "--model",
        "fast",
        "--epochs",
        str(epochs),
        "--batch-size",
        str(per_process_batch),
        "--threads",
        str(threads),
        "--device",
        "cpu",
        "--progress",
        "log",
        "--outputs",
        str(out),
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), CUDA_VISIBLE_DEVICES="")
    subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True, text=True)
    metrics = json.loads((out / "metrics.json").read_text())
    history = metrics["history"]
    return {
        "processes": nproc,
        "global_batch": per_process_batch * nproc,
        "threads_per_process": threads,
        "train_images_per_sec": sum(r["images_per_sec"] for r in history) / len(history),
        "train_seconds": sum(r["epoch_seconds"] for r in history),
        "heldout_accuracy": metrics["accuracy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64, help="per process in the data-parallel run")
    parser.add_argument("--threads", type=int, default=2, help="total CPU threads for each run")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    data = cifar10_png_subset(train_per_class=150, test_per_class=50)
    with tempfile.TemporaryDirectory(prefix="amlvision-ddp-bench-") as tmp:
        single = run(1, args.batch_size * args.nproc, args.threads, data, args.epochs, Path(tmp) / "single")
        ddp = run(args.nproc, args.batch_size, max(1, args.threads // args.nproc), data, args.epochs, Path(tmp) / "ddp")
    print(json.dumps(single))
    print(json.dumps(ddp))
    print(
        json.dumps(
            {"ratio_images_per_sec_ddp_over_single": ddp["train_images_per_sec"] / single["train_images_per_sec"]}
        )
    )


if __name__ == "__main__":
    main()
