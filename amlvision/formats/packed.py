"""The packed format: uint8 images and int64 labels in flat files that ``np.memmap`` opens instantly.

Decoding 50,000 PNGs costs seconds on every epoch; reading a flat uint8 array costs nothing and
lets augmentation run vectorised on whole batches. Layout of a packed directory::

    manifest.json            format, version, class names, image shape, per-split counts + sha256
    <split>.images.u8        N x H x W x C uint8, C-order
    <split>.labels.i64       N int64 class indexes

The directory is written under a temporary name and renamed into place only after every file
is flushed and the manifest is written, so an interrupted pack never leaves a complete-looking
result.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from amlvision.formats.atomic import atomic_dir

MANIFEST_NAME = "manifest.json"
FORMAT_NAME = "amlvision-packed"
FORMAT_VERSION = 1
_HASH_CHUNK = 1 << 24


class PackedFormatError(ValueError):
    """A packed directory is missing, incomplete, or does not match its manifest."""


def _images_file(split: str) -> str:
    return f"{split}.images.u8"


def _labels_file(split: str) -> str:
    return f"{split}.labels.i64"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _SplitWriter:
    """Appends images of one split to its files while hashing them."""

    def __init__(self, folder: Path, split: str, image_shape: tuple[int, int, int]):
        self.split = split
        self.image_shape = image_shape
        self.count = 0
        self._images = open(folder / _images_file(split), "wb")
        self._labels = open(folder / _labels_file(split), "wb")
        self._images_hash = hashlib.sha256()
        self._labels_hash = hashlib.sha256()

    def add(self, images: np.ndarray, labels: np.ndarray) -> None:
        images = np.ascontiguousarray(images, dtype=np.uint8)
        labels = np.ascontiguousarray(labels, dtype=np.int64).reshape(-1)
        if images.ndim == 3:
            images = images[None]
        if images.shape[1:] != self.image_shape:
            raise PackedFormatError(
                f"split {self.split!r}: image shape {images.shape[1:]} differs from {self.image_shape}"
            )
        if len(images) != len(labels):
            raise PackedFormatError(f"split {self.split!r}: {len(images)} images but {len(labels)} labels")
        for data, fh, digest in ((images, self._images, self._images_hash), (labels, self._labels, self._labels_hash)):
            view = memoryview(data).cast("B")
            fh.write(view)
            digest.update(view)
        self.count += len(labels)

    def close(self) -> dict[str, Any]:
        for fh in (self._images, self._labels):
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        return {
            "count": self.count,
            "images": _images_file(self.split),
            "labels": _labels_file(self.split),
            "sha256": {
                _images_file(self.split): self._images_hash.hexdigest(),
                _labels_file(self.split): self._labels_hash.hexdigest(),
            },
        }


class PackedWriter:
    """Stream images into a new packed directory; use as a context manager.

    ``with PackedWriter(out, class_names, (32, 32, 3)) as w: w.add("train", images, labels)``.
    On an exception the partial directory is removed and ``out`` is left untouched.
    """

    def __init__(
        self,
        out_dir: str | Path,
        class_names: Sequence[str],
        image_shape: tuple[int, int, int],
        *,
        source: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ):
        self.out_dir = Path(out_dir)
        self.class_names = list(class_names)
        self.image_shape = tuple(int(v) for v in image_shape)
        self.source = dict(source or {})
        self.overwrite = overwrite
        self._splits: dict[str, _SplitWriter] = {}
        self._tmp: Path | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> PackedWriter:
        self._tmp = self._stack.enter_context(atomic_dir(self.out_dir, overwrite=self.overwrite))
        return self

    def add(self, split: str, images: np.ndarray, labels: np.ndarray) -> None:
        if self._tmp is None:
            raise RuntimeError("PackedWriter.add() outside its 'with' block")
        if not split.isidentifier():
            raise ValueError(f"split name {split!r} must be an identifier such as 'train' or 'test'")
        labels = np.asarray(labels)
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.class_names)):
            raise PackedFormatError(
                f"split {split!r}: label {int(labels.max())} outside 0..{len(self.class_names) - 1}"
            )
        if split not in self._splits:
            self._splits[split] = _SplitWriter(self._tmp, split, self.image_shape)
        self._splits[split].add(images, labels)

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._tmp is not None
        try:
            if exc_type is None:
                manifest = {
                    "format": FORMAT_NAME,
                    "version": FORMAT_VERSION,
                    "class_names": self.class_names,
                    "image_shape": list(self.image_shape),
                    "layout": "NHWC",
                    "dtype": "uint8",
                    "splits": {name: writer.close() for name, writer in self._splits.items()},
                    "source": self.source,
                }
                (self._tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
            else:
                for writer in self._splits.values():
                    writer.close()
        except BaseException as error:  # the partial folder goes, ``out_dir`` stays untouched
            self._stack.__exit__(type(error), error, error.__traceback__)
            raise
        self._tmp = None
        self._stack.__exit__(exc_type, exc, tb)  # renames into place only when nothing failed


def write_packed(
    out_dir: str | Path,
    splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
    class_names: Sequence[str],
    *,
    source: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write whole in-memory splits ``{name: (images NxHxWxC uint8, labels N)}`` at once."""
    shapes = {tuple(images.shape[1:]) for images, _ in splits.values()}
    if len(shapes) != 1:
        raise PackedFormatError(f"all splits must share one image shape, got {sorted(shapes)}")
    with PackedWriter(out_dir, class_names, shapes.pop(), source=source, overwrite=overwrite) as writer:
        for name, (images, labels) in splits.items():
            writer.add(name, images, labels)
    return Path(out_dir)


def is_packed(path: str | Path) -> bool:
    manifest = Path(path) / MANIFEST_NAME
    if not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text()).get("format") == FORMAT_NAME
    except (OSError, ValueError):
        return False


class PackedDataset:
    """Read-only view of a packed directory; arrays are memory-mapped, not loaded."""

    def __init__(self, path: str | Path, *, verify: bool = False):
        self.path = Path(path)
        manifest_path = self.path / MANIFEST_NAME
        if not manifest_path.is_file():
            raise PackedFormatError(f"{self.path}: no {MANIFEST_NAME}; not a packed dataset (or an interrupted pack)")
        try:
            self.manifest = json.loads(manifest_path.read_text())
        except ValueError as exc:
            raise PackedFormatError(f"{manifest_path}: invalid JSON ({exc})") from exc
        if self.manifest.get("format") != FORMAT_NAME:
            raise PackedFormatError(f"{manifest_path}: format is {self.manifest.get('format')!r}, not {FORMAT_NAME!r}")
        if self.manifest.get("version") != FORMAT_VERSION:
            raise PackedFormatError(f"{manifest_path}: unsupported version {self.manifest.get('version')!r}")
        self.class_names: list[str] = list(self.manifest["class_names"])
        self.image_shape: tuple[int, int, int] = tuple(self.manifest["image_shape"])  # H, W, C
        for split in self.splits:
            self._check_sizes(split)
        if verify:
            self.verify()

    @property
    def splits(self) -> list[str]:
        return list(self.manifest["splits"])

    def count(self, split: str) -> int:
        return int(self._split(split)["count"])

    def _split(self, split: str) -> dict[str, Any]:
        try:
            return self.manifest["splits"][split]
        except KeyError:
            raise KeyError(f"{self.path}: no split {split!r}; splits are {self.splits}") from None

    def _check_sizes(self, split: str) -> None:
        info = self._split(split)
        n = int(info["count"])
        expected = {info["images"]: n * int(np.prod(self.image_shape)), info["labels"]: n * 8}
        for name, size in expected.items():
            file = self.path / name
            if not file.is_file():
                raise PackedFormatError(f"{file}: missing (listed in {MANIFEST_NAME})")
            if file.stat().st_size != size:
                raise PackedFormatError(f"{file}: {file.stat().st_size} bytes, manifest implies {size}")

    def images(self, split: str) -> np.ndarray:
        info = self._split(split)
        shape = (int(info["count"]), *self.image_shape)
        if shape[0] == 0:
            return np.zeros(shape, dtype=np.uint8)
        return np.memmap(self.path / info["images"], dtype=np.uint8, mode="r", shape=shape)

    def labels(self, split: str) -> np.ndarray:
        info = self._split(split)
        return np.fromfile(self.path / info["labels"], dtype=np.int64)

    def verify(self) -> None:
        """Recompute every file's sha256 and compare with the manifest."""
        for split in self.splits:
            for name, expected in self._split(split)["sha256"].items():
                actual = sha256_file(self.path / name)
                if actual != expected:
                    raise PackedFormatError(f"{self.path / name}: sha256 {actual} does not match manifest {expected}")
