"""CTF files of images — as ``amlvision pack --to ctf`` and CNTK's CIFAR-10 tutorial write them — read back.

Each line is one image: ``|labels`` one-hot (or sparse ``index:1``) and ``|features`` the pixels
channel-major (C planes of H x W, integers 0-255). The image shape comes from ``dataset.json``
beside the file when amlvision wrote it; otherwise from the feature dimension: ``3·s·s`` is an
``s x s`` RGB image, ``s·s`` an ``s x s`` gray one (anything else needs ``image_shape``). Parsing
is done by ``amlvision.ctf``, so a ragged row or a wrong dimension is an error naming file and line.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from amlvision.ctf import CTFError, StreamDef, read_arrays
from amlvision.data.collection import LabeledImages
from amlvision.formats.datasetjson import read_dataset_json
from amlvision.formats.mapfile import CLASS_NAMES_FILE, read_class_names

_FIELD = re.compile(rb"\|(\S+)([^|]*)")


def looks_like_ctf(path: str | Path) -> bool:
    """True when the first non-blank line is CTF: ``|alias values`` (optionally after a sequence id)."""
    try:
        with open(path, "rb") as fh:
            for line in fh:
                if line.strip():
                    return re.match(rb"^\s*(\d+\s*)?\|\S", line) is not None
    except OSError:
        return False
    return False


def _metadata(path: Path) -> dict:
    return read_dataset_json(path, format="ctf")


def shape_from_dim(dim: int, path: Path) -> tuple[int, int, int]:
    for channels in (3, 1):
        side = math.isqrt(dim // channels)
        if dim % channels == 0 and side * side * channels == dim:
            return side, side, channels
    raise CTFError(f"{path}: cannot tell the image shape from {dim} features; pass image_shape=(H, W, C)")


def _first_line(path: Path) -> dict[str, tuple[int, bool]]:
    """``alias -> (value count, is_sparse)`` on the first non-blank line."""
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                fields = {}
                for alias, values in _FIELD.findall(line):
                    tokens = values.split()
                    fields[alias.decode()] = (len(tokens), bool(tokens) and b":" in tokens[0])
                return fields
    raise CTFError(f"{path}: empty file")


def read_ctf_images(
    path: str | Path,
    *,
    image_shape: tuple[int, int, int] | None = None,
    class_names: list[str] | None = None,
    features: str = "features",
    labels: str = "labels",
) -> LabeledImages:
    """Read a CTF file of images into in-memory ``LabeledImages`` (uint8, H x W x C)."""
    path = Path(path)
    meta = _metadata(path)
    first = _first_line(path)
    for alias in (features, labels):
        if alias not in first:
            raise CTFError(f"{path}:1: no |{alias} field (found {sorted(first)})")
    if class_names is None:
        names_file = path.parent / CLASS_NAMES_FILE
        class_names = meta.get("class_names") or (read_class_names(names_file) if names_file.is_file() else None)
    dim = first[features][0]
    if image_shape is None and meta.get("image_shape"):
        image_shape = tuple(meta["image_shape"])
    shape = tuple(image_shape) if image_shape else shape_from_dim(dim, path)
    dim = int(np.prod(shape))
    label_sparse = first[labels][1]
    if label_sparse and class_names is None:
        raise CTFError(f"{path}: sparse |{labels} need the class list (class_names.txt beside the file, or --classes)")
    n_classes = len(class_names) if class_names is not None else first[labels][0]
    streams = {
        "features": StreamDef(features, dim),
        "labels": StreamDef(labels, n_classes, is_sparse=label_sparse),
    }
    data = read_arrays(path, streams, dtype={"features": np.uint8, "labels": np.float32})
    counts = np.diff(data.offsets["features"])
    if (counts != 1).any() or (np.diff(data.offsets["labels"]) != 1).any():
        bad = int(np.flatnonzero((counts != 1) | (np.diff(data.offsets["labels"]) != 1))[0])
        raise CTFError(f"{path}:{int(data.lines[bad])}: a sequence must hold exactly one image and one label")
    onehot = data.data["labels"]
    onehot = onehot.toarray() if hasattr(onehot, "toarray") else onehot
    valid = (np.count_nonzero(onehot, axis=1) == 1) & (onehot.max(axis=1) == 1)
    if not valid.all():
        line = int(data.lines[int(np.flatnonzero(~valid)[0])])
        raise CTFError(f"{path}:{line}: |{labels} is not one-hot (exactly one 1, the rest 0)")
    h, w, c = shape
    images = data.data["features"].reshape(-1, c, h, w).transpose(0, 2, 3, 1)
    names = list(class_names) if class_names is not None else [str(i) for i in range(n_classes)]
    return LabeledImages(
        class_names=names,
        labels=onehot.argmax(axis=1).astype(np.int64),
        arrays=np.ascontiguousarray(images),
        sources=[f"{path}:{line}" for line in data.lines.tolist()],
        origin=str(path),
    )


def ctf_files(folder: Path) -> list[Path]:
    """The CTF files of a folder: those ``dataset.json`` lists, else every ``*.ctf``."""
    meta = _metadata(folder / "dataset.json")
    if meta.get("files"):
        return [folder / name for name in meta["files"].values()]
    return sorted(p for p in folder.glob("*.ctf") if p.is_file())
