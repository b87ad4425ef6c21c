"""Throughput of the minibatch sources on real CIFAR-10 images (prints figures; not a test).

    .venv/bin/python bench/source_speed.py [--workers 2] [--epochs 2] [--batch-size 256]

1. ``ImageSource`` decoding PNGs with ``randomarea`` crop + ``scale`` + ``color`` in ``--workers``
   processes (target: >= 3,000 images/s on 2 cores). Baseline in the same process: a plain loop
   that only decodes the same PNGs with ``load_image`` (one process).
2. ``PackedSource`` with random flip + translate 2 (target: >= 100,000 images/s) over the
   CIFAR-10 subset tiled to 50,000 images. Baseline: the same source without augmentation.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from amlvision.data.images import load_image
from amlvision.formats.packed import write_packed
from amlvision.sources.image_source import ImageSource
from amlvision.sources.packed_source import PackedSource
from amlvision.testing.datasets import cifar10_png_subset

IMAGE_TRANSFORMS = [
    {
        "type": "crop",
        "crop_type": "randomarea",
        "area_ratio": [0.5, 1.0],
        "aspect_ratio": [0.75, 1.0],
        "jitter_type": "uniratio",
    },
    {"type": "scale", "width": 32, "height": 32, "channels": 3},
    {"type": "color", "brightness_radius": 0.2, "contrast_radius": 0.2, "saturation_radius": 0.2},
]


def _rate(source, epochs: int, batch_size: int) -> float:
    next(source.iter_epoch(0, batch_size))  # warm-up (page cache, worker start-up paid once below anyway)
    count, start = 0, time.perf_counter()
    for epoch in range(epochs):
        for _, labels in source.iter_epoch(epoch, batch_size):
            count += len(labels)
    return count / (time.perf_counter() - start)


def bench_image_source(root: Path, workers: int, epochs: int, batch_size: int) -> None:
    files = sorted((root / "train").glob("*/*.png"))
    start = time.perf_counter()
    for path in files:
        load_image(path)
    decode_rate = len(files) / (time.perf_counter() - start)
    source = ImageSource(root, "train", transforms=IMAGE_TRANSFORMS, num_workers=workers, seed=0)
    rate = _rate(source, epochs, batch_size)
    # CPU cost per image, in-process: robust to other jobs sharing the machine.
    single = ImageSource(root, "train", transforms=IMAGE_TRANSFORMS, num_workers=0, seed=0)
    cpu_start, count = time.process_time(), 0
    for _, labels in single.iter_epoch(1, batch_size):
        count += len(labels)
    per_cpu_second = count / (time.process_time() - cpu_start)
    print(
        f"ImageSource randomarea+scale+color, {workers} workers: {rate:,.0f} images/s "
        f"(target >= 3,000); baseline decode-only loop, 1 process: {decode_rate:,.0f} images/s; "
        f"ratio {rate / decode_rate:.2f}; CPU cost in-process: {per_cpu_second:,.0f} images per CPU-second "
        f"(2 free cores ~ {2 * per_cpu_second:,.0f} images/s)"
    )


def bench_packed_source(root: Path, epochs: int, batch_size: int, threads: int) -> None:
    files = sorted((root / "train").glob("*/*.png"))
    images = np.stack([load_image(p) for p in files])
    labels = np.arange(len(images)) % 10
    reps = -(-50_000 // len(images))
    images, labels = np.tile(images, (reps, 1, 1, 1))[:50_000], np.tile(labels, reps)[:50_000]
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_packed(Path(tmp) / "packed", {"train": (images, labels)}, [str(k) for k in range(10)])
        plain = _rate(PackedSource(path, "train", seed=0), epochs, batch_size)
        augmented = _rate(
            PackedSource(path, "train", seed=0, augment={"flip": "random", "translate": 2}), epochs, batch_size
        )
        alternate = _rate(
            PackedSource(path, "train", seed=0, augment={"flip": "alternate", "translate": 2, "pad_mode": "reflect"}),
            epochs,
            batch_size,
        )
    print(
        f"PackedSource flip+translate(2), {threads} thread(s), batch {batch_size}: {augmented:,.0f} images/s "
        f"(target >= 100,000); alternating flip + reflect: {alternate:,.0f} images/s; "
        f"baseline no augmentation: {plain:,.0f} images/s; ratio {augmented / plain:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the PackedSource run")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--packed-batch-size", type=int, default=512)
    parser.add_argument("--per-class", type=int, default=500, help="train PNGs per class from the shared archive")
    args = parser.parse_args()
    root = cifar10_png_subset(train_per_class=args.per_class, test_per_class=50)
    bench_image_source(root, args.workers, args.epochs, args.batch_size)
    bench_packed_source(root, args.epochs, args.packed_batch_size, args.threads)


if __name__ == "__main__":
    main()
