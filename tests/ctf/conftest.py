"""CIFAR-10 subset images decoded once per session for the round-trip and source tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from amlvision.data.images import load_image


@pytest.fixture(scope="session")
def cifar_arrays(cifar_subset: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """All 2,000 subset images (train then test, classes sorted) as ``N x 32 x 32 x 3`` uint8 and labels."""
    classes = sorted(p.name for p in (cifar_subset / "train").iterdir())
    images, labels = [], []
    for split in ("train", "test"):
        for k, name in enumerate(classes):
            for png in sorted((cifar_subset / split / name).glob("*.png")):
                images.append(load_image(png))
                labels.append(k)
    return np.stack(images), np.array(labels, dtype=np.int64), classes
