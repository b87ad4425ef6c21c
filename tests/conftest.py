"""Shared fixtures: real data from ../shared/data, extracted once into a cache folder.

The CIFAR-10 subset is deterministic (the first files per class, in sorted order), so
every test and every helper sees the same images.
"""

from __future__ import annotations

import os
import shutil
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
def small_cifar(cifar_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 train and 200 test images of the real subset (the first files of each class).

    Copies, not links: the Docker submit tests mount this folder into a container, where links
    to the cache outside the mount would dangle.
    """
    root = tmp_path_factory.mktemp("cifar-small")
    for split, per_class in (("train", 40), ("test", 20)):
        for class_dir in sorted((cifar_subset / split).iterdir()):
            dest = root / split / class_dir.name
            dest.mkdir(parents=True)
            for image in sorted(class_dir.glob("*.png"))[:per_class]:
                shutil.copy2(image, dest / image.name)
    return root


@pytest.fixture(scope="session")
def kaggle_sample(shared_data: Path) -> Path:
    """Kaggle-layout CIFAR-10 sample: ``train/<id>.png`` plus ``trainLabels.csv`` (id,label)."""
    return kaggle_sample_dir()


@pytest.fixture(autouse=True)
def _quiet_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two cores: keep per-test thread pools small so parallel work does not thrash.
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))


TF_RUN_ARGS = ("--engine", "tensorflow", "--model", "tf-cifar10", "--epochs", "2", "--batch-size", "128", "--seed", "3")


@pytest.fixture(scope="session")
def tf_run(cifar_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real TensorFlow run of ``tf-cifar10`` on the CIFAR-10 subset (train.py in a subprocess); its outputs/.

    A subprocess, so TensorFlow's thread pools and memory do not stay in the test process.
    """
    from tests.training.helpers import run_train

    outputs = tmp_path_factory.mktemp("tf") / "outputs"
    args = ["--data", str(cifar_subset), *TF_RUN_ARGS, "--outputs", str(outputs), "--threads", "2", "--progress", "log"]
    done = run_train(args, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return outputs
