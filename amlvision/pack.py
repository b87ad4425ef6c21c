"""``pack``: turn a resolved ``Dataset`` into CTF, a CNTK map-file folder, or the packed format.

Every output directory is written under a temporary name beside ``out`` and renamed into place
only when complete, so an interrupted pack never leaves output that looks finished. Bad items
(corrupt images, missing files, unknown labels) stop the pack with an error naming the item, or
with ``skip_bad`` are left out and listed in the ``PackReport`` — never dropped silently.

Output layouts (see docs/data.md):

- ``packed``: ``amlvision.formats.packed`` directory (``manifest.json``, ``<split>.images.u8``, ``<split>.labels.i64``).
- ``ctf``: ``<split>.ctf`` with ``|labels`` (one-hot, or sparse ``index:1``) and ``|features`` (C planes
  of H x W, 0-255), plus ``class_names.txt`` and ``dataset.json`` (shapes and stream dimensions).
- ``map``: ``<split>/<class>/<name>.png``, ``<split>_map.txt`` (``path<TAB>label``, relative to the
  folder), ``train_mean.xml`` (OpenCV XML mean image of the training split), ``class_names.txt``,
  ``dataset.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from amlvision.ctf import write_images
from amlvision.data.archives import cache_root
from amlvision.data.collection import LabeledImages
from amlvision.data.decoding import decode_chunks
from amlvision.data.resolve import Dataset, resolve
from amlvision.formats import packed
from amlvision.formats.atomic import atomic_dir
from amlvision.formats.datasetjson import write_dataset_json
from amlvision.formats.mapfile import write_class_names, write_map_file
from amlvision.formats.meanxml import write_mean_file
from amlvision.formats.splits import ordered

FORMATS = ("ctf", "map", "packed")


class PackError(ValueError):
    """The source cannot be packed as asked (bad item, mixed sizes, existing output)."""


@dataclass
class PackReport:
    """What a pack wrote and what it left out (with ``skip_bad``), for the user and for logs."""

    out: Path
    format: str
    class_names: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    image_shape: tuple[int, int, int] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        shape = "x".join(map(str, self.image_shape)) if self.image_shape else "mixed"
        lines = [
            f"packed {self.total} images ({', '.join(f'{k}: {v}' for k, v in self.counts.items())}) "
            f"of {len(self.class_names)} classes, {shape}, as {self.format} into {self.out} in {self.seconds:.1f} s"
        ]
        lines += [f"note: {note}" for note in self.notes]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} item(s):")
            lines += [f"  {item}: {reason}" for item, reason in self.skipped]
        return "\n".join(lines)


def _without_name(reason: str, name: str) -> str:
    """Decoding errors already start with the file name; the skip report names it once."""
    return reason.removeprefix(f"{name}: ")


def _ordered(splits: dict[str, LabeledImages]) -> list[tuple[str, LabeledImages]]:
    return [(name, splits[name]) for name in ordered(splits)]


class _ShapeCheck:
    """Insists on one image shape (packed/CTF/mean), naming example files when sizes are mixed."""

    def __init__(self, expected: tuple[int, int, int] | None):
        self.shape = expected
        self.example = "the --size option" if expected else ""

    def check(self, image: np.ndarray, where: str) -> None:
        if self.shape is None:
            self.shape, self.example = image.shape, where
        elif image.shape != self.shape:
            h, w, _ = self.shape
            raise PackError(
                f"images have different sizes: {self.example} is {h}x{w} but {where} is "
                f"{image.shape[0]}x{image.shape[1]}; pass size=(H, W) (--size HxW) to resize every image"
            )


def _decoded(
    split: str,
    images: LabeledImages,
    *,
    channels: int,
    size: tuple[int, int] | None,
    skip_bad: bool,
    report: PackReport,
    workers: int | None,
    png_out: list[str] | None = None,
) -> Iterator[tuple[list[int], list[np.ndarray]]]:
    """Yield ``(indexes, arrays)`` of successfully decoded items, chunk by chunk, recording failures."""
    for chunk in decode_chunks(images, channels=channels, size=size, workers=workers, png_out=png_out):
        if chunk.errors and not skip_bad:
            raise PackError(f"split {split!r}: {chunk.errors[0][1]} (use --skip-bad to skip bad images)")
        for i, reason in chunk.errors:
            name = images.describe(i)
            report.skipped.append((name, _without_name(reason, name)))
        keep = [i for i, image in enumerate(chunk.images) if image is not None]
        yield [chunk.start + i for i in keep], [chunk.images[i] for i in keep]


# ---------------------------------------------------------------- packed


def _pack_packed(splits, out: Path, report: PackReport, *, channels, size, skip_bad, workers, overwrite, source):
    shape = _ShapeCheck((size[0], size[1], channels) if size else None)
    iterators = {
        split: _decoded(split, images, channels=channels, size=size, skip_bad=skip_bad, report=report, workers=workers)
        for split, images in splits
    }
    # The writer needs the image shape up front: decode until the first good image before opening it.
    pending: dict[str, list[tuple[list[int], list[np.ndarray]]]] = {split: [] for split, _ in splits}
    for split, images in splits:
        for chunk in iterators[split]:
            pending[split].append(chunk)
            if chunk[1]:
                shape.check(chunk[1][0], images.describe(chunk[0][0]))
                break
        if shape.shape is not None:
            break
    if shape.shape is None:
        raise PackError("no images could be decoded; nothing to pack")
    with packed.PackedWriter(out, report.class_names, shape.shape, source=source, overwrite=overwrite) as writer:
        for split, images in splits:
            report.counts[split] = 0
            for indexes, arrays in itertools.chain(pending[split], iterators[split]):
                for i, array in zip(indexes, arrays, strict=True):
                    shape.check(array, images.describe(i))
                if arrays:
                    writer.add(split, np.stack(arrays), images.labels[indexes])
                report.counts[split] += len(arrays)
            if report.counts[split] == 0:
                writer.add(split, np.zeros((0, *shape.shape), np.uint8), np.zeros(0, np.int64))
        writer.source["skipped"] = [list(item) for item in report.skipped]
    report.image_shape = tuple(shape.shape)


# ---------------------------------------------------------------- CTF


def _pack_ctf(splits, tmp: Path, report: PackReport, *, channels, size, skip_bad, workers, sparse_labels):
    """One ``<split>.ctf`` per split via ``amlvision.ctf.write_images`` (a split is held in memory while written)."""
    shape = _ShapeCheck((size[0], size[1], channels) if size else None)
    files = {}
    for split, images in splits:
        kept: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        for indexes, arrays in _decoded(
            split, images, channels=channels, size=size, skip_bad=skip_bad, report=report, workers=workers
        ):
            for i, array in zip(indexes, arrays, strict=True):
                shape.check(array, images.describe(i))
            if arrays:
                kept.append(np.stack(arrays))
                labels.append(images.labels[indexes])
        block = np.concatenate(kept) if kept else np.zeros((0, *(shape.shape or (1, 1, channels))), np.uint8)
        files[split] = f"{split}.ctf"
        write_images(
            tmp / files[split],
            block,
            np.concatenate(labels) if labels else np.zeros(0, np.int64),
            len(report.class_names),
            label_format="sparse" if sparse_labels else "dense",
        )
        report.counts[split] = len(block)
    report.image_shape = tuple(shape.shape) if shape.shape else None
    h, w, c = report.image_shape or (0, 0, channels)
    return {
        "streams": {
            "features": {"alias": "features", "dim": h * w * c, "layout": "CHW", "format": "dense"},
            "labels": {
                "alias": "labels",
                "dim": len(report.class_names),
                "format": "sparse" if sparse_labels else "dense",
            },
        },
        "files": files,
    }


# ---------------------------------------------------------------- map files


def _safe(name: str) -> str:
    cleaned = re.sub(r"[^\w.\-]+", "_", name).strip("._")
    return cleaned or "x"


def _png_names(split: str, images: LabeledImages) -> list[str]:
    """``<split>/<class>/<stem>.png`` per item, unique (a counter suffix resolves clashes)."""
    class_dirs: dict[int, str] = {}
    used_dirs: set[str] = set()
    for k, name in enumerate(images.class_names):
        folder = _safe(name)
        while folder in used_dirs:
            folder = f"{folder}_{k}"
        used_dirs.add(folder)
        class_dirs[k] = folder
    seen: Counter[str] = Counter()
    names = []
    for i in range(len(images)):
        stem = _safe(images.paths[i].stem) if images.paths is not None else f"{i:06d}"
        rel = f"{split}/{class_dirs[int(images.labels[i])]}/{stem}"
        seen[rel] += 1
        names.append(f"{rel}.png" if seen[rel] == 1 else f"{rel}_{seen[rel] - 1}.png")
    return names


def _pack_map(splits, tmp: Path, report: PackReport, *, channels, size, skip_bad, workers):
    mean_splits = {"train"} if any(s == "train" for s, _ in splits) else {s for s, _ in splits}
    info: dict[str, Any] = {"map_files": {}, "mean_files": {}}
    shapes: set[tuple[int, ...]] = set()
    for split, images in splits:
        names = _png_names(split, images)
        for folder in {str(Path(name).parent) for name in names}:
            (tmp / folder).mkdir(parents=True, exist_ok=True)
        entries: list[tuple[str, int]] = []
        total: np.ndarray | None = None
        mixed = False
        for indexes, arrays in _decoded(
            split,
            images,
            channels=channels,
            size=size,
            skip_bad=skip_bad,
            report=report,
            workers=workers,
            png_out=[str(tmp / n) for n in names],
        ):
            entries.extend((names[i], int(images.labels[i])) for i in indexes)
            shapes.update(a.shape for a in arrays)
            if split in mean_splits and arrays and not mixed:
                if len({a.shape for a in arrays}) > 1 or (total is not None and arrays[0].shape != total.shape):
                    mixed = True
                else:
                    block = np.stack(arrays).sum(axis=0, dtype=np.float64)
                    total = block if total is None else total + block
        for name in set(names) - {e[0] for e in entries}:  # skipped items: no half-written PNG left behind
            (tmp / name).unlink(missing_ok=True)
        map_name = f"{split}_map.txt"
        write_map_file(tmp / map_name, entries)
        info["map_files"][split] = map_name
        report.counts[split] = len(entries)
        if split in mean_splits:
            if mixed or total is None:
                report.notes.append(f"no {split}_mean.xml: images of split {split!r} differ in size (pass --size)")
            else:
                mean_name = f"{split}_mean.xml"
                write_mean_file(tmp / mean_name, total / len(entries))
                info["mean_files"][split] = mean_name
    report.image_shape = tuple(shapes.pop()) if len(shapes) == 1 else None
    return info


# ---------------------------------------------------------------- entry points


def _parse_size(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, str):
        parts = re.split(r"[xX, ]+", size.strip())
        size = tuple(int(p) for p in parts if p)
        if len(size) == 1:
            size = (size[0], size[0])
    if len(size) != 2 or min(size) <= 0:
        raise PackError(f"size must be (height, width) with positive values, got {size!r}")
    return int(size[0]), int(size[1])


def pack(
    src: str | Path | Dataset | dict[str, LabeledImages],
    to: str,
    out: str | Path,
    *,
    size: tuple[int, int] | str | None = None,
    channels: int = 3,
    skip_bad: bool = False,
    overwrite: bool = False,
    workers: int | None = None,
    sparse_labels: bool = False,
    **collection_options: Any,
) -> PackReport:
    """Pack ``src`` (a ``Dataset``, a ``--data`` string resolved here, or ``{split: LabeledImages}``) into ``out``.

    ``collection_options``: ``SourceOptions`` fields, used only when ``src`` still needs resolving.
    """
    if to not in FORMATS:
        raise PackError(f"unknown format {to!r}; choose one of {', '.join(FORMATS)}")
    if channels not in (1, 3):
        raise PackError(f"channels must be 1 or 3, got {channels}")
    size = _parse_size(size)
    started = time.perf_counter()
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists (pass overwrite=True / --overwrite to replace it)")
    if isinstance(src, dict):
        collections = src
    else:
        dataset = resolve(src, skip_bad=skip_bad, **collection_options) if not isinstance(src, Dataset) else src
        if dataset.kind == "packed":
            raise PackError(f"{dataset.source} is already a packed dataset")
        if dataset.task != "classification":
            raise PackError(f"{dataset.source}: a {dataset.kind} ({dataset.task}) dataset; pack takes labelled images")
        collections = dataset.collection()
        skip_bad = skip_bad or dataset.options.skip_bad
    splits = _ordered(collections)
    if not splits or all(len(images) == 0 for _, images in splits):
        raise PackError(f"{src}: no images found")
    class_names = splits[0][1].class_names
    for split, images in splits:
        if images.class_names != class_names:
            raise PackError(f"split {split!r} has classes {images.class_names}, split {splits[0][0]!r} {class_names}")
    report = PackReport(out=out, format=to, class_names=list(class_names))
    for _, images in splits:
        report.skipped.extend(images.skipped)
    source = {
        "path": "<in-memory>" if isinstance(src, dict) else str(src.source if isinstance(src, Dataset) else src),
        "channels": channels,
        "size": list(size) if size else None,
    }
    common = {"channels": channels, "size": size, "skip_bad": skip_bad, "workers": workers}
    if to == "packed":
        _pack_packed(splits, out, report, overwrite=overwrite, source=source, **common)
    else:
        with atomic_dir(out, overwrite=overwrite) as tmp:
            extra = (
                _pack_ctf(splits, tmp, report, sparse_labels=sparse_labels, **common)
                if to == "ctf"
                else _pack_map(splits, tmp, report, **common)
            )
            write_class_names(tmp / "class_names.txt", report.class_names)
            meta = {
                "format": to,
                "class_names": report.class_names,
                "counts": report.counts,
                "image_shape": list(report.image_shape) if report.image_shape else None,
                "skipped": [list(item) for item in report.skipped],
                "source": source,
                **extra,
            }
            write_dataset_json(tmp, meta)
    report.seconds = time.perf_counter() - started
    return report


def ensure_packed(
    dataset: str | Path | Dataset,
    *,
    cache_dir: str | Path | None = None,
    size: tuple[int, int] | str | None = None,
    channels: int | None = 3,
    **collection_options: Any,
) -> Path:
    """The packed directory of ``dataset``: itself if packed, else a copy packed once into the cache.

    The cache key is the dataset's cheap fingerprint (``amlvision.data.fingerprint``), the read options,
    ``size`` and ``channels`` (``None``: the data's own, found only when a pack is really needed), so a
    second run on an unchanged archive finds its copy without reading the archive or listing its images.
    """
    dataset = resolve(dataset, **collection_options) if not isinstance(dataset, Dataset) else dataset
    if dataset.kind == "packed":
        return dataset.root
    size = _parse_size(size)
    key_data = {
        "src": str(dataset.source.resolve()),
        "fingerprint": dataset.fingerprint,
        "size": size,
        "channels": channels or "auto",
        "options": dataset.options.cache_key(),
        "version": packed.FORMAT_VERSION,
    }
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:20]
    base = Path(cache_dir) if cache_dir else cache_root() / "packed"
    out = base / f"{_safe(dataset.source.name)}-{key}"
    if packed.is_packed(out):
        return out
    base.mkdir(parents=True, exist_ok=True)
    with _exclusive(base / f".{out.name}.lock"):  # ranks of one job pack once; the others wait, then reuse
        if not packed.is_packed(out):
            pack(dataset, "packed", out, size=size, channels=channels or dataset.channels, overwrite=out.exists())
    return out


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """An inter-process lock (``flock``; a no-op where the platform has none)."""
    with open(lock_path, "a") as fh:
        try:
            import fcntl
        except ImportError:  # Windows: concurrent packs still end atomically, just not once
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
