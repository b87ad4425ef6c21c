"""Shared fixtures: real data from ../shared/data, extracted once into a cache folder.

The CIFAR-10 subset is deterministic (the first files per class, in sorted order), so
every test and every helper sees the same images.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from amlvision.testing.datasets import (
    SHARED_DATA,
    cifar10_png_subset,
    kaggle_sample_dir,
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data folder {SHARED_DATA} is missing; set AMLVISION_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def cifar_subset(shared_data: Path) -> Path:
    """CIFAR-10 PNG subset laid out as ``root/{train,test}/<class>/<file>.png``.

    2,000 images: 150 train and 50 test images per class.
    """
    return cifar10_png_subset(train_per_class=150, test_per_class=50)


@pytest.fixture(scope="session")
def kaggle_sample(shared_data: Path) -> Path:
    """Kaggle-layout CIFAR-10 sample: ``train/<id>.png`` plus ``trainLabels.csv`` (id,label)."""
    return kaggle_sample_dir()


@pytest.fixture(autouse=True)
def _quiet_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two cores: keep per-test thread pools small so parallel work does not thrash.
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))
