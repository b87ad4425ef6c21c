"""Benchmark: pack the CIFAR-10 PNGs (all 60,000 by default) into the packed format.

Prints wall-clock seconds and images/s for the parallel pack and for a single-process baseline
in the same run, their ratio, and then verifies every pixel and label of the packed output
against direct Pillow decoding of each file. Target (issue 2): <= 10 s for 60,000 PNGs on 2 cores.

    .venv/bin/python bench/pack_speed.py             # all 60,000
    .venv/bin/python bench/pack_speed.py --limit 5000

Figures depend on what else runs on the machine: on a shared box they are pessimistic. The CPU
seconds printed beside each run (main process + worker processes) do not depend on contention;
"got N cores" says how much of the machine the run actually received.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amlvision.data.collection import LabeledImages  # noqa: E402
from amlvision.data.decoding import available_cpus  # noqa: E402
from amlvision.data.discover import open_collection  # noqa: E402
from amlvision.pack import pack  # noqa: E402
from amlvision.packed import PackedDataset  # noqa: E402
from amlvision.testing.datasets import cifar10_png_full  # noqa: E402


def _subset(splits: dict[str, LabeledImages], limit: int | None) -> dict[str, LabeledImages]:
    total = sum(len(s) for s in splits.values())
    if not limit or limit >= total:
        return splits
    result = {}
    for name, images in splits.items():
        keep = np.linspace(0, len(images) - 1, max(1, round(limit * len(images) / total))).astype(int)
        result[name] = LabeledImages(images.class_names, images.labels[keep], paths=[images.paths[i] for i in keep])
    return result


def _cpu() -> tuple[float, float]:
    """CPU seconds used so far by this process and by its finished child processes."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def _timed_pack(source: Path, limit: int | None, out: Path, workers: int) -> tuple[float, str, dict]:
    started, (me0, kids0) = time.perf_counter(), _cpu()
    splits = _subset(open_collection(source), limit)
    pack(splits, "packed", out, workers=workers)
    seconds = time.perf_counter() - started
    me1, kids1 = _cpu()
    main, workers = me1 - me0, kids1 - kids0
    cpu = f"CPU: main {main:.2f} s + workers {workers:.2f} s; got {(main + workers) / seconds:.2f} cores"
    return seconds, cpu, splits


def _verify(out: Path, splits: dict[str, LabeledImages]) -> int:
    ds = PackedDataset(out, verify=True)
    checked = 0
    for name, images in splits.items():
        packed_images, packed_labels = ds.images(name), ds.labels(name)
        if len(packed_labels) != len(images):
            raise SystemExit(f"FAIL {name}: {len(packed_labels)} packed, {len(images)} in source")
        for i, path in enumerate(images.paths):
            with Image.open(path) as img:
                direct = np.asarray(img.convert("RGB"))
            if not np.array_equal(packed_images[i], direct):
                raise SystemExit(f"FAIL pixel mismatch: {path}")
            if ds.class_names[packed_labels[i]] != path.parent.name:
                raise SystemExit(f"FAIL label mismatch: {path} packed as {ds.class_names[packed_labels[i]]}")
            checked += 1
    return checked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, help="pack only about N images (spread over splits and classes)")
    parser.add_argument("--workers", type=int, default=available_cpus(), help="processes for the parallel pack")
    parser.add_argument("--no-baseline", action="store_true", help="skip the single-process baseline")
    args = parser.parse_args()

    source = cifar10_png_full()  # extracted once into the cache; not timed
    work = Path(tempfile.mkdtemp(prefix="pack-bench-"))
    try:
        open_collection(source)  # warm the directory cache for both runs alike
        print(f"source {source}; {available_cpus()} CPUs available; load average {os.getloadavg()[0]:.2f}")
        seconds, cpu, splits = _timed_pack(source, args.limit, work / "parallel", args.workers)
        n = sum(len(s) for s in splits.values())
        print(
            f"parallel ({args.workers} processes): {n} images in {seconds:.2f} s = {n / seconds:,.0f} images/s ({cpu})"
        )
        if not args.no_baseline:
            base, cpu, _ = _timed_pack(source, args.limit, work / "baseline", 1)
            print(f"baseline (1 process):     {n} images in {base:.2f} s = {n / base:,.0f} images/s ({cpu})")
            print(f"speed-up: {base / seconds:.2f}x")
        started = time.perf_counter()
        checked = _verify(work / "parallel", splits)
        print(
            f"verified {checked} images: every pixel and label equals direct Pillow decoding "
            f"({time.perf_counter() - started:.1f} s)"
        )
        target = 10.0 * n / 60000
        print(f"target for {n} images: <= {target:.2f} s -> {'PASS' if seconds <= target else 'MISS'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
