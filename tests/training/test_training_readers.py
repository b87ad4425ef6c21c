"""Each reader (packed, image, ctf) trains the same model on the same real images to above-chance accuracy,
and grayscale data of another size (scikit-learn digits) trains with a recorded stratified validation split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from amlvision.training.loop import main

from .helpers import train_args


@pytest.fixture(scope="module")
def cifar_ctf(cifar_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from amlvision.pack import pack

    out = tmp_path_factory.mktemp("ctf") / "cifar-ctf"
    pack(cifar_subset, "ctf", out)
    return out


@pytest.mark.parametrize("reader", ["packed", "image", "ctf"])
def test_each_reader_trains_resnet20_above_chance(
    reader: str, cifar_subset: Path, cifar_packed: Path, cifar_ctf: Path, tmp_path: Path
) -> None:
    data = {"packed": cifar_packed, "image": cifar_subset, "ctf": cifar_ctf}[reader]
    outputs = tmp_path / "out"
    # --interpolations cubic: the image reader's scale transform uses it (a no-op at 32x32, so the run is
    # unchanged); packing resized bilinearly and CTF is stored at size. preprocess.json says which.
    args = ("--reader", reader, "--batch-size", "64", "--workers", "0", "--interpolations", "cubic")
    assert main(train_args(data, outputs, *args)) == 0
    metrics = json.loads((outputs / "metrics.json").read_text())
    assert metrics["heldout"] == "test" and metrics["num_samples"] == 500
    assert json.loads((outputs / "labels.json").read_text())[0] == "airplane"
    assert metrics["accuracy"] > 0.2, (reader, metrics["accuracy"])  # chance: 0.1
    pre = json.loads((outputs / "preprocess.json").read_text())
    resize = {"packed": "bilinear", "image": "bicubic", "ctf": "bilinear"}[reader]
    assert (pre["version"], pre["task"], pre["resize"]) == (2, "classification", resize)


@pytest.mark.parametrize("reader", ["packed", "image"])
def test_grayscale_digits_train_with_stratified_validation_split(
    reader: str, digits_folder: Path, tmp_path: Path
) -> None:
    outputs = tmp_path / "out"
    args = train_args(
        digits_folder,
        outputs,
        "--reader",
        reader,
        "--batch-size",
        "64",
        "--seed",
        "3",
        "--workers",
        "0",
        "--translate",
        "1",
        "--flip",
        "false",
    )
    assert main(args) == 0
    pre = json.loads((outputs / "preprocess.json").read_text())
    assert (pre["channels"], pre["height"], pre["width"]) == (1, 8, 8)
    split = json.loads((outputs / "split.json").read_text())
    assert split["seed"] == 3 and split["fraction"] == 0.1
    val, train = np.array(split["validation_indexes"]), np.array(split["train_indexes"])
    assert len(val) + len(train) == 1797 and not set(val) & set(train)
    from sklearn.datasets import load_digits

    targets = load_digits().target[np.argsort([f"{t}/{i:04d}" for i, t in enumerate(load_digits().target)])]
    per_class = np.bincount(targets[val], minlength=10)
    assert per_class.min() >= 17 and per_class.max() <= 19  # stratified: ~10% of each ~180-image class
    metrics = json.loads((outputs / "metrics.json").read_text())
    assert metrics["heldout"] == "validation" and metrics["num_samples"] == len(val)
    assert metrics["accuracy"] > 0.5, metrics["accuracy"]  # chance: 0.1
