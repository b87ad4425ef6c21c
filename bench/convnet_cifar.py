"""Train CNTK's CIFAR-10 tutorial ConvNet (CNTK's recipe) on full CIFAR-10; print accuracy and time.

CNTK's published figure for ``ConvNet_CIFAR10_DataAug.py`` (80 epochs, random 0.8 side crop of the
40x40 pre-padded images): about 14% test error. ``--epochs`` shortens the run; the recipe's
learning-rate and momentum steps scale with it (they are fractions of training).

    python bench/convnet_cifar.py                       # the full 80-epoch recipe
    python bench/convnet_cifar.py --epochs 5            # a shortened schedule

Prints one JSON line with the test accuracy/error, training seconds, images/s and the ratio of our
error to CNTK's published error (the baseline).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from amlvision.testing.datasets import CIFAR10_PNG_TAR  # noqa: E402
from amlvision.training.config import parse_config  # noqa: E402
from amlvision.training.loop import configure_logging, train  # noqa: E402

CNTK_PUBLISHED_ERROR = 0.14  # Examples/Image/Classification/ConvNet/Python/README.md, ConvNet_CIFAR10_DataAug.py


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(CIFAR10_PNG_TAR))
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--outputs", default=None, help="default: a temporary folder")
    parser.add_argument("--threads", type=int, default=0)
    args, extra = parser.parse_known_args()
    configure_logging()
    outputs = args.outputs or tempfile.mkdtemp(prefix="convnet-cifar-")
    cfg = parse_config(
        [
            "--data",
            args.data,
            "--model",
            "convnet",
            "--epochs",
            str(args.epochs),
            "--outputs",
            outputs,
            "--threads",
            str(args.threads),
            "--progress",
            "log",
            *extra,
        ]
    )
    start = time.perf_counter()
    metrics = train(cfg)
    wall = time.perf_counter() - start
    history = metrics["history"]
    error = 1 - metrics["accuracy"]
    print(
        json.dumps(
            {
                "model": "convnet",
                "epochs": args.epochs,
                "test_accuracy": round(metrics["accuracy"], 4),
                "test_error": round(error, 4),
                "train_seconds": round(metrics["train_seconds"], 1),
                "wall_seconds": round(wall, 1),
                "images_per_sec": round(sum(h["images_per_sec"] for h in history) / len(history), 1),
                "cntk_published_error": CNTK_PUBLISHED_ERROR,
                "error_ratio_vs_cntk": round(error / CNTK_PUBLISHED_ERROR, 3),
                "outputs": outputs,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
