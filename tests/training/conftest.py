"""Training-test fixtures: real images (CIFAR-10 subset, scikit-learn digits) packed once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from amlvision.data.resolve import open_collection
from amlvision.formats.packed import write_packed


def pack_collection(source: Path, out: Path, channels: int = 3) -> Path:
    """Decode every image of a source with the data layer and write a packed directory (test set-up)."""
    splits = {}
    class_names = None
    for split, items in open_collection(source).items():
        class_names = items.class_names
        splits[split] = (np.stack([items.load(i, channels) for i in range(len(items))]), items.labels)
    return write_packed(out, splits, class_names)


@pytest.fixture(scope="session")
def cifar_packed(cifar_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 2,000-image CIFAR-10 subset (train 1,500 / test 500) as a packed directory."""
    return pack_collection(cifar_subset, tmp_path_factory.mktemp("packed") / "cifar")


@pytest.fixture(scope="session")
def digits_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn's 8x8 grayscale digits written as PNG class folders (no test split: validation is drawn)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    root = tmp_path_factory.mktemp("digits") / "digits"
    for i, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        folder = root / f"digit{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.rint(image * 255 / 16).astype(np.uint8), mode="L").save(folder / f"{i:04d}.png")
    return root


@pytest.fixture(scope="session")
def digits_packed(digits_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pack_collection(digits_folder, tmp_path_factory.mktemp("packed") / "digits", channels=1)


@pytest.fixture(autouse=True)
def _two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def fast_run(cifar_packed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real training run of the ``fast`` model on the CIFAR subset (train.py in-process); its outputs/."""
    from amlvision.training.loop import main

    outputs = tmp_path_factory.mktemp("fast") / "outputs"
    args = [
        "--data",
        str(cifar_packed),
        "--model",
        "fast",
        "--epochs",
        "2",
        "--batch-size",
        "128",
        "--outputs",
        str(outputs),
        "--threads",
        "2",
        "--progress",
        "log",
    ]
    mp = pytest.MonkeyPatch()
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "AZUREML_RUN_ID"):
        mp.delenv(name, raising=False)
    try:
        assert main(args) == 0
    finally:
        mp.undo()
    return outputs
