"""Decode (and optionally resize, and write as PNG) many images in parallel worker processes.

Decoding a 32x32 PNG costs ~70 µs of Python-level Pillow work, so 60,000 images need several
processes to pack in seconds. Work goes out in ordered chunks (``Executor.map``), so results stream
back in dataset order and memory stays bounded by a few chunks, whatever the dataset size.
Workers are forked where the platform allows (as PyTorch's DataLoader does on Linux): no re-import
of the caller's script, no main-module guard needed, start-up in milliseconds.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import shutil
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from amlvision.data.collection import LabeledImages, convert_array
from amlvision.data.images import ImageReadError, decode, to_channels

DEFAULT_CHUNK = 500


@dataclass
class Chunk:
    """Decoded items ``start .. start + len(images)`` of a collection; ``None`` where decoding failed."""

    start: int
    images: list[np.ndarray | None]
    errors: list[tuple[int, str]]  # (index in collection, reason)


@dataclass(frozen=True)
class _Task:
    start: int
    paths: list[str] | None
    arrays: np.ndarray | None
    names: list[str]
    channels: int
    size: tuple[int, int] | None
    png_out: list[str] | None  # write each image here as PNG (map format); folders must exist


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resize(img: Image.Image, size: tuple[int, int] | None) -> Image.Image:
    """Bilinear resize to ``size = (height, width)`` (the interpolation of preprocess.json)."""
    if size is None or img.size == (size[1], size[0]):
        return img
    return img.resize((size[1], size[0]), Image.Resampling.BILINEAR)


def _to_array(img: Image.Image) -> np.ndarray:
    arr = np.asarray(img, dtype=np.uint8)
    return np.ascontiguousarray(arr[:, :, None] if arr.ndim == 2 else arr)


def _unchanged_png(original: Image.Image, task: _Task) -> bool:
    """True when the source file is a PNG whose pixels are exactly what we would encode (copy it instead).

    ``decode`` returns the opened file itself (``format`` set) only when no EXIF rotation was applied.
    """
    same_size = task.size is None or original.size == (task.size[1], task.size[0])
    return original.format == "PNG" and same_size and original.mode == ("L" if task.channels == 1 else "RGB")


def _one(task: _Task, i: int) -> np.ndarray:
    copy_from = None
    if task.paths is not None:
        original = decode(task.paths[i], name=task.names[i])
        img = resize(to_channels(original, task.channels), task.size)
        if task.png_out is not None and _unchanged_png(original, task):
            copy_from = task.paths[i]
        arr = _to_array(img)
    else:
        arr = convert_array(task.arrays[i], task.channels)
        if task.size is not None and arr.shape[:2] != tuple(task.size):
            mode = "L" if arr.shape[2] == 1 else "RGB"
            arr = _to_array(resize(Image.fromarray(arr[:, :, 0] if mode == "L" else arr, mode), task.size))
    if task.png_out is not None:
        out = Path(task.png_out[i])  # its folder exists: the caller creates folders once, not per file
        if copy_from is not None:
            shutil.copyfile(copy_from, out)
        else:
            buffer = io.BytesIO()  # one write per file: this is what costs on slow file systems
            Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(buffer, format="PNG", compress_level=1)
            out.write_bytes(buffer.getvalue())
    return arr


def _run(task: _Task) -> Chunk:
    n = len(task.names)
    images: list[np.ndarray | None] = []
    errors: list[tuple[int, str]] = []
    for i in range(n):
        try:
            images.append(_one(task, i))
        except ImageReadError as exc:
            images.append(None)
            errors.append((task.start + i, str(exc)))
        except OSError as exc:  # writing the PNG failed: not the input's fault, stop the pack
            raise OSError(f"{task.png_out[i] if task.png_out else task.names[i]}: {exc}") from exc
    return Chunk(task.start, images, errors)


def _tasks(
    images: LabeledImages, channels: int, size: tuple[int, int] | None, chunk: int, png_out: list[str] | None
) -> Iterator[_Task]:
    for start in range(0, len(images), chunk):
        stop = min(start + chunk, len(images))
        yield _Task(
            start=start,
            paths=[str(p) for p in images.paths[start:stop]] if images.paths is not None else None,
            arrays=images.arrays[start:stop] if images.arrays is not None else None,
            names=[images.describe(i) for i in range(start, stop)],
            channels=channels,
            size=tuple(size) if size else None,
            png_out=png_out[start:stop] if png_out is not None else None,
        )


def decode_chunks(
    images: LabeledImages,
    *,
    channels: int = 3,
    size: tuple[int, int] | None = None,
    workers: int | None = None,
    chunk: int = DEFAULT_CHUNK,
    png_out: list[str] | None = None,
) -> Iterator[Chunk]:
    """Yield decoded chunks in order. ``workers=None`` uses every available CPU; 1 decodes in-process."""
    workers = available_cpus() if workers is None else max(1, workers)
    tasks = _tasks(images, channels, size, chunk, png_out)
    no_work_to_share = images.arrays is not None and size is None and channels == images.arrays.shape[3] and not png_out
    if workers == 1 or len(images) <= chunk or no_work_to_share:
        yield from map(_run, tasks)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    window = 2 * workers  # chunks in flight: bounds memory whatever the consumer's speed
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[Future[Chunk]] = deque()
        try:
            for task in tasks:
                pending.append(pool.submit(_run, task))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
