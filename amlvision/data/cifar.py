"""The official CIFAR-10 python batches (``cifar-10-batches-py/`` from ``cifar-10-python.tar.gz``).

Layout (Krizhevsky 2009): ``data_batch_1`` … ``data_batch_5`` and ``test_batch`` are pickled dicts with
``data`` (N x 3072 uint8, channel-major: 1024 R, 1024 G, 1024 B values of a 32x32 image, rows in order)
and ``labels`` (N ints); ``batches.meta`` holds ``label_names``. The files are pickles, so they are read
with an unpickler that only rebuilds numpy arrays and plain containers — a tampered batch cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from amlvision.data.collection import LabeledImages

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
FOLDER_NAME = "cifar-10-batches-py"
SIDE = 32

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # protocol-2 pickles written by Python 3 store bytes this way
}


class CifarFormatError(ValueError):
    """A CIFAR batch file is missing or does not have the official layout."""


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")
        return super().find_class(module, name)


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CifarFormatError(f"{path}: missing (expected the official CIFAR-10 python batch files)")
    try:
        with open(path, "rb") as fh:
            raw = _ArrayUnpickler(fh, encoding="bytes").load()
    except Exception as exc:
        raise CifarFormatError(f"{path}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from exc
    if not isinstance(raw, dict):
        raise CifarFormatError(f"{path}: expected a pickled dict, found {type(raw).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def is_cifar_folder(folder: Path) -> bool:
    return (folder / META).is_file() and (folder / TRAIN_BATCHES[0]).is_file()


def find_cifar_folder(folder: Path) -> Path | None:
    """``folder`` itself or its ``cifar-10-batches-py`` child, if either holds the batches."""
    for candidate in (folder, folder / FOLDER_NAME):
        if candidate.is_dir() and is_cifar_folder(candidate):
            return candidate
    return None


def read_label_names(folder: Path) -> list[str]:
    meta = _load(folder / META)
    names = meta.get("label_names")
    if not isinstance(names, list) or not names:
        raise CifarFormatError(f"{folder / META}: no 'label_names' list")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def _read_batch(path: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = _load(path)
    if "data" not in batch or "labels" not in batch:
        raise CifarFormatError(f"{path}: missing 'data' or 'labels' (keys: {sorted(batch)})")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE:
        raise CifarFormatError(f"{path}: 'data' is {data.dtype} {data.shape}, expected N x 3072 uint8")
    if len(labels) != len(data):
        raise CifarFormatError(f"{path}: {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise CifarFormatError(f"{path}: label {int(labels.max())} outside the {n_classes} label_names")
    images = data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1)  # channel-major -> H x W x C
    return np.ascontiguousarray(images), labels


def read_cifar_batches(folder: str | Path) -> dict[str, LabeledImages]:
    """``{"train": 50,000 images, "test": 10,000 images}`` as in-memory ``LabeledImages``."""
    folder = Path(folder)
    names = read_label_names(folder)
    splits: dict[str, LabeledImages] = {}
    for split, batch_names in (("train", TRAIN_BATCHES), ("test", (TEST_BATCH,))):
        parts = [_read_batch(folder / name, len(names)) for name in batch_names]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        sources = [
            f"{folder / name}[{i}]" for name, p in zip(batch_names, parts, strict=True) for i in range(len(p[1]))
        ]
        splits[split] = LabeledImages(names, labels, arrays=images, sources=sources, origin=str(folder))
    return splits


def write_cifar_batches(
    folder: str | Path,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    label_names: list[str],
) -> Path:
    """Write images (N x 32 x 32 x 3 uint8) in the official layout: 5 train batches, 1 test batch, meta."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def dump(name: str, images: np.ndarray, labels: np.ndarray, label: str) -> None:
        data = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), -1)
        record = {
            "batch_label": label,
            "labels": [int(v) for v in labels],
            "data": data,
            "filenames": [f"{i:06d}.png" for i in range(len(labels))],
        }
        with open(folder / name, "wb") as fh:
            pickle.dump(record, fh, protocol=2)

    chunks = np.array_split(np.arange(len(train[1])), len(TRAIN_BATCHES))
    for i, (name, idx) in enumerate(zip(TRAIN_BATCHES, chunks, strict=True), start=1):
        dump(name, train[0][idx], train[1][idx], f"training batch {i} of 5")
    dump(TEST_BATCH, test[0], test[1], "testing batch 1 of 1")
    with open(folder / META, "wb") as fh:
        pickle.dump(
            {"label_names": list(label_names), "num_cases_per_batch": len(chunks[0]), "num_vis": 3 * SIDE * SIDE},
            fh,
            protocol=2,
        )
    return folder
