"""Benchmark: pack the CIFAR-10 PNGs (all 60,000 by default) into the packed format.

Prints wall-clock seconds and images/s for the parallel pack and for a single-process baseline
in the same run, and their ratio; then packs to ctf and map too, reads every output back (packed
memmap, CTF via amlvision.ctf, map files + PNGs) and checks every pixel and label against direct
Pillow decoding of each source file. Target (issue 2): packed, <= 10 s for 60,000 PNGs on 2 cores.

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
from amlvision.data.resolve import open_collection  # noqa: E402
from amlvision.formats.packed import PackedDataset  # noqa: E402
from amlvision.pack import pack  # noqa: E402
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


def _timed_pack(
    source: Path, limit: int | None, out: Path, workers: int, fmt: str = "packed"
) -> tuple[float, str, dict[str, LabeledImages]]:
    started, (me0, kids0) = time.perf_counter(), _cpu()
    splits = _subset(open_collection(source), limit)
    pack(splits, fmt, out, workers=workers)
    seconds = time.perf_counter() - started
    me1, kids1 = _cpu()
    main, workers = me1 - me0, kids1 - kids0
    cpu = f"CPU: main {main:.2f} s + workers {workers:.2f} s; got {(main + workers) / seconds:.2f} cores"
    return seconds, cpu, splits


def _read_back(fmt: str, out: Path) -> dict[str, tuple[list[str], object, np.ndarray]]:
    """``split -> (class names, image accessor, labels)`` of a packed output, read the way users read it."""
    if fmt == "packed":
        ds = PackedDataset(out, verify=True)
        return {s: (ds.class_names, ds.images(s).__getitem__, ds.labels(s)) for s in ds.splits}
    splits = open_collection(out)  # ctf: parsed by amlvision.ctf; map: map files + PNGs beside them
    return {s: (c.class_names, c.load, c.labels) for s, c in splits.items()}


def _verify(outputs: dict[str, Path], splits: dict[str, LabeledImages]) -> int:
    """Decode every source file once with Pillow and compare it with each format's copy."""
    read = {fmt: _read_back(fmt, out) for fmt, out in outputs.items()}
    checked = 0
    for name, images in splits.items():
        for fmt, got in read.items():
            if len(got[name][2]) != len(images):
                raise SystemExit(f"FAIL {fmt} {name}: {len(got[name][2])} images, {len(images)} in source")
        for i, path in enumerate(images.paths):
            with Image.open(path) as img:
                direct = np.asarray(img.convert("RGB"))
            for fmt, (class_names, image_at, labels) in ((f, g[name]) for f, g in read.items()):
                if not np.array_equal(image_at(i), direct):
                    raise SystemExit(f"FAIL {fmt}: pixel mismatch for {path}")
                if class_names[labels[i]] != path.parent.name:
                    raise SystemExit(f"FAIL {fmt}: {path} labelled {class_names[labels[i]]}")
            checked += 1
    return checked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, help="pack only about N images (spread over splits and classes)")
    parser.add_argument("--workers", type=int, default=available_cpus(), help="processes for the parallel pack")
    parser.add_argument("--no-baseline", action="store_true", help="skip the single-process baseline")
    parser.add_argument(
        "--formats", default="packed,ctf,map", help="formats to pack and verify (timed target: packed); default all"
    )
    args = parser.parse_args()

    source = cifar10_png_full()  # extracted once into the cache; not timed
    work = Path(tempfile.mkdtemp(prefix="pack-bench-"))
    try:
        open_collection(source)  # warm the directory cache for both runs alike
        print(f"source {source}; {available_cpus()} CPUs available; load average {os.getloadavg()[0]:.2f}")
        formats = [f for f in args.formats.split(",") if f]
        seconds, cpu, splits = _timed_pack(source, args.limit, work / "packed", args.workers)
        n = sum(len(s) for s in splits.values())
        print(
            f"parallel ({args.workers} processes): {n} images in {seconds:.2f} s = {n / seconds:,.0f} images/s ({cpu})"
        )
        if not args.no_baseline:
            base, cpu, _ = _timed_pack(source, args.limit, work / "baseline", 1)
            print(f"baseline (1 process):     {n} images in {base:.2f} s = {n / base:,.0f} images/s ({cpu})")
            print(f"speed-up: {base / seconds:.2f}x")
        outputs = {"packed": work / "packed"}
        for fmt in (f for f in formats if f != "packed"):
            took, cpu, _ = _timed_pack(source, args.limit, work / fmt, args.workers, fmt)
            print(f"{fmt:>6} ({args.workers} processes): {n} images in {took:.2f} s ({cpu})")
            outputs[fmt] = work / fmt
        started = time.perf_counter()
        checked = _verify({f: outputs[f] for f in formats if f in outputs} or outputs, splits)
        print(
            f"verified {checked} images in {', '.join(formats)}: every pixel and label equals direct Pillow "
            f"decoding of the source file ({time.perf_counter() - started:.1f} s)"
        )
        target = 10.0 * n / 60000
        print(f"target for {n} images: <= {target:.2f} s -> {'PASS' if seconds <= target else 'MISS'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
