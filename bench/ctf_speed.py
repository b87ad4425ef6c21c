"""CTF write and read speed on real CIFAR-10, with every pixel and label verified.

Writes the 60,000 CIFAR-10 images (or ``--limit N``) with ``amlvision.ctf.write_images`` in the
layout of CNTK's CIFAR-10 tutorial, reads them back with ``read_arrays`` (float32, and uint8 as
``CTFSource`` does) and with the streaming ``iter_sequences``, and compares each against a naive
same-process baseline on a sample of lines (per-line ``str.split`` + ``numpy`` conversion,
i.e. what ``numpy.loadtxt``-style code does; and the tutorial's ``" ".join(row.astype(str))``
writer).

    .venv/bin/python bench/ctf_speed.py            # all 60,000 images, ~700 MB of text
    .venv/bin/python bench/ctf_speed.py --limit 5000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amlvision import ctf  # noqa: E402
from amlvision.testing.datasets import cifar10_png_full  # noqa: E402

STREAMS = {"features": ctf.StreamDef("features", 3072), "labels": ctf.StreamDef("labels", 10)}


def load_cifar(limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Decode the PNGs (train then test, classes and files sorted) with Pillow."""
    root = cifar10_png_full()
    classes = sorted(p.name for p in (root / "train").iterdir())
    files = [
        (png, k)
        for split in ("train", "test")
        for k, c in enumerate(classes)
        for png in sorted((root / split / c).glob("*.png"))
    ]
    if limit:
        files = files[:: max(1, len(files) // limit)][:limit]  # every class, spread over both splits
    images = np.empty((len(files), 32, 32, 3), dtype=np.uint8)
    for i, (png, _) in enumerate(files):
        with Image.open(png) as img:
            images[i] = np.asarray(img.convert("RGB"))
    return images, np.array([k for _, k in files], dtype=np.int64)


CPU: dict[str, float] = {}


def timed(fn, name: str | None = None):
    """Wall seconds of ``fn()``; its CPU seconds go to ``CPU[name]`` (robust on a busy machine)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    if name:
        CPU[name] = time.process_time() - cpu
    return result, time.perf_counter() - start


def rate(size: int, seconds: float, name: str) -> str:
    return f"{size / seconds / 1e6:7.1f} MB/s wall, {size / CPU[name] / 1e6:7.1f} MB/s per CPU-second"


def naive_write(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """CNTK tutorial's writer (cifar_utils.saveTxt): Python string formatting per value."""
    eye = [" ".join(row) for row in np.eye(10, dtype=np.uint8).astype(str)]
    with open(path, "w") as out:
        for image, label in zip(images.transpose(0, 3, 1, 2).reshape(len(images), -1), labels, strict=True):
            out.write(f"|labels {eye[label]} |features {' '.join(image.astype(str))}\n")


def naive_read(lines: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Per line: split at '|', then numpy converts the split tokens (loadtxt-style)."""
    features, labels = [], []
    for line in lines:
        _, lab, feat = line.split(b"|")
        labels.append(np.array(lab.split()[1:], dtype=np.float32))
        features.append(np.array(feat.split()[1:], dtype=np.float32))
    return np.stack(features), np.stack(labels)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="use only N images (spread over classes)")
    parser.add_argument("--sample", type=int, default=2000, help="lines for the naive baselines")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the CTF file (default: a temp dir)")
    args = parser.parse_args()

    (images, labels), seconds = timed(lambda: load_cifar(args.limit))
    n = len(images)
    print(f"decoded {n} CIFAR-10 PNGs in {seconds:.1f} s")
    workdir = Path(tempfile.mkdtemp(prefix="ctf-bench-", dir=args.workdir))
    try:
        path = workdir / "cifar_cntk_text.txt"
        size, seconds = timed(lambda: ctf.write_images(path, images, labels, num_classes=10), "write")
        write_mbps = size / seconds / 1e6
        print(f"write_images       : {size / 1e6:.1f} MB in {seconds:6.2f} s = {rate(size, seconds, 'write')}")

        sample = min(args.sample, n)
        _, naive_seconds = timed(lambda: naive_write(workdir / "naive.txt", images[:sample], labels[:sample]), "nw")
        naive_write_mbps = (workdir / "naive.txt").stat().st_size / naive_seconds / 1e6
        naive_write_cpu = (workdir / "naive.txt").stat().st_size / CPU["nw"]
        print(
            f"  baseline (tutorial saveTxt, {sample} images): {naive_write_mbps:6.1f} MB/s "
            f"-> x{write_mbps / naive_write_mbps:.1f} (CPU time: x{size / CPU['write'] / naive_write_cpu:.1f})"
        )
        assert (workdir / "naive.txt").read_bytes() == b"".join(path.open("rb").readlines()[:sample]), (
            "write_images output differs from the CNTK tutorial writer"
        )

        results = {}
        for label, dtype in (("float32", np.float32), ("uint8", {"features": np.uint8})):
            arrays, seconds = timed(lambda dtype=dtype: ctf.read_arrays(path, STREAMS, dtype=dtype), label)
            results[label] = size / seconds / 1e6
            print(f"read_arrays {label:7s}: {seconds:6.2f} s = {rate(size, seconds, label)}")
            back = arrays.data["features"].reshape(n, 3, 32, 32).transpose(0, 2, 3, 1)
            assert np.array_equal(back, images), "pixels differ after the round trip"
            assert np.array_equal(arrays.data["labels"].argmax(axis=1), labels), "labels differ"
            assert (arrays.data["labels"].sum(axis=1) == 1).all()
            del arrays, back

        def stream() -> int:
            count = 0
            for i, seq in enumerate(ctf.iter_sequences(path, STREAMS)):
                if i % 997 == 0:  # spot-check while streaming; the full check ran above
                    assert np.array_equal(seq["features"].reshape(3, 32, 32).transpose(1, 2, 0), images[i])
                count += 1
            return count

        count, seconds = timed(stream, "iter_sequences")
        assert count == n
        results["iter_sequences"] = size / seconds / 1e6
        print(f"iter_sequences     : {seconds:6.2f} s = {rate(size, seconds, 'iter_sequences')}")

        with open(path, "rb") as handle:
            lines = [handle.readline() for _ in range(sample)]
        sample_bytes = sum(map(len, lines))
        (naive_features, naive_labels), seconds = timed(lambda: naive_read(lines), "nr")
        naive_mbps = sample_bytes / seconds / 1e6
        assert np.array_equal(naive_features.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), images[:sample])
        print(
            f"  baseline (split + numpy per line, {sample} lines): {naive_mbps:6.1f} MB/s -> "
            + ", ".join(f"{k} x{v / naive_mbps:.1f}" for k, v in results.items())
        )
        naive_cpu = sample_bytes / CPU["nr"]
        print("  same ratios in CPU time: " + ", ".join(f"{k} x{size / CPU[k] / naive_cpu:.1f}" for k in results))
        print(f"verified {n} images: every pixel and label identical after write + read")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
