"""Real CIFAR-10 PNGs from the shared ``cifar_subset``, loaded once, and a packed copy of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from amlvision.data.images import load_image
from amlvision.formats.packed import write_packed
from tests.ctf.conftest import cifar_arrays  # noqa: F401  (CTFSource's tests write their CTF file from it)


@dataclass
class CifarSplit:
    paths: list[Path]
    images: np.ndarray  # N x H x W x C uint8
    labels: np.ndarray
    class_names: list[str]


def _load_split(root: Path, split: str) -> CifarSplit:
    class_names = sorted(p.name for p in (root / split).iterdir() if p.is_dir())
    paths, labels = [], []
    for k, name in enumerate(class_names):
        for file in sorted((root / split / name).glob("*.png")):
            paths.append(file)
            labels.append(k)
    images = np.stack([load_image(p) for p in paths])
    return CifarSplit(paths, images, np.asarray(labels, dtype=np.int64), class_names)


@pytest.fixture(scope="session")
def cifar_train(cifar_subset: Path) -> CifarSplit:
    return _load_split(cifar_subset, "train")


@pytest.fixture(scope="session")
def cifar_test(cifar_subset: Path) -> CifarSplit:
    return _load_split(cifar_subset, "test")


@pytest.fixture(scope="session")
def packed_cifar(tmp_path_factory: pytest.TempPathFactory, cifar_train: CifarSplit, cifar_test: CifarSplit) -> Path:
    out = tmp_path_factory.mktemp("packed") / "cifar"
    splits = {"train": (cifar_train.images, cifar_train.labels), "test": (cifar_test.images, cifar_test.labels)}
    return write_packed(out, splits, cifar_train.class_names)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def packed_formats(tmp_path_factory: pytest.TempPathFactory, cifar_subset: Path) -> dict[str, Path]:
    """The cifar_subset packed by the data layer as a map-file folder and as CTF (``amlvision.pack``)."""
    from amlvision.pack import pack

    out = tmp_path_factory.mktemp("formats")
    return {fmt: pack(cifar_subset, fmt, out / fmt).out for fmt in ("map", "ctf")}
