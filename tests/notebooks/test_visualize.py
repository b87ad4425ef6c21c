"""amlvision.visualize draws what the notebooks show: real images, real transform outputs, real run logs."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from amlvision import visualize
from amlvision.data.collection import convert_array
from amlvision.data.resolve import open_collection
from amlvision.formats.meanxml import write_mean_file
from amlvision.training import tracking
from amlvision.transforms import TransformPipeline


@pytest.fixture(scope="module")
def kaggle_train(kaggle_sample: Path):
    return open_collection(kaggle_sample)["train"]


def _drawn(ax) -> np.ndarray:
    return np.asarray(ax.images[0].get_array())


def test_displayable_keeps_pixels_and_stretches_what_is_not_pixels():
    pixels = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    assert visualize.displayable(pixels) is pixels
    as_float = torch.from_numpy(pixels).permute(2, 0, 1).float()  # C x H x W features in 0-255 units
    np.testing.assert_array_equal(visualize.displayable(as_float), pixels)
    centred = pixels.astype(np.float32) - 30.0  # after a mean transform: negative values
    stretched = visualize.displayable(centred)
    assert stretched.min() == 0 and stretched.max() == 255
    assert np.array_equal(np.argsort(stretched.ravel(), kind="stable"), np.argsort(centred.ravel(), kind="stable"))
    assert (visualize.displayable(np.full((2, 2, 1), -5.0)) == 128).all()
    with pytest.raises(ValueError, match="1 or 3 channels"):
        visualize.displayable(np.zeros((4, 4, 2)))


def test_class_samples_shows_the_first_images_of_every_class(kaggle_train):
    fig = visualize.class_samples(kaggle_train, per_class=3)
    axes = np.array(fig.axes).reshape(10, 3)
    for row, name in enumerate(kaggle_train.class_names):
        first = int(np.flatnonzero(kaggle_train.labels == row)[0])
        np.testing.assert_array_equal(_drawn(axes[row, 0]), kaggle_train.load(first))
        count = int((kaggle_train.labels == row).sum())
        assert axes[row, 0].get_ylabel() == f"{name}\n({count})"
    assert fig.get_suptitle() == "200 images, 3 per class shown"


def test_transform_gallery_draws_each_transform_output(kaggle_train, tmp_path: Path):
    image = kaggle_train.load(0)
    mean_file = tmp_path / "mean.xml"
    write_mean_file(mean_file, np.full((32, 32, 3), 100.0, np.float32))
    config = {
        "randomside": [{"type": "crop", "crop_type": "randomside", "side_ratio": 0.5}],
        "multiview": [{"type": "crop", "crop_type": "multiview10", "side_ratio": 0.75}],
        "scale gray": [{"type": "scale", "width": 48, "height": 40, "channels": 1}],
        "mean": [{"type": "mean", "filename": str(mean_file)}],
    }
    fig = visualize.transform_gallery(image, config, seed=7, draws=2)
    axes = np.array(fig.axes).reshape(4, 11)
    for row in (0, 1, 3):
        np.testing.assert_array_equal(_drawn(axes[row, 0]), image)  # before
    side = TransformPipeline(config["randomside"])
    for draw in range(2):
        expected = side(image, random.Random(7 + draw)).numpy().transpose(1, 2, 0).astype(np.uint8)
        np.testing.assert_array_equal(_drawn(axes[0, 1 + draw]), expected)
    assert not axes[0, 3].images  # two draws only
    views = TransformPipeline(config["multiview"])
    for view in range(10):
        expected = views(image, random.Random(7), view).numpy().transpose(1, 2, 0).astype(np.uint8)
        np.testing.assert_array_equal(_drawn(axes[1, 1 + view]), expected)
    assert axes[1, 1].get_title() == "after view 0 (24, 24)"
    # scale with channels=1 works on the gray image, as ImageSource decodes it; deterministic: one column
    np.testing.assert_array_equal(_drawn(axes[2, 0]), convert_array(image, 1)[:, :, 0])
    assert _drawn(axes[2, 1]).shape == (40, 48) and not axes[2, 2].images
    assert axes[2, 1].get_title() == "after (40, 48)"
    # after mean the values are no longer pixels: the title gives their range
    centred = image.astype(np.float32) - 100.0
    assert axes[3, 1].get_title() == f"after (32, 32)\n{centred.min():.0f}..{centred.max():.0f}"


def test_image_grid_checks_its_titles():
    images = [np.zeros((8, 8, 3), np.uint8)] * 3
    fig = visualize.image_grid(images, ["a", "b", "c"], cols=2)
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="2 titles for 3 images"):
        visualize.image_grid(images, ["a", "b"])


def test_run_log_read_back_as_columns_and_curves(tmp_path: Path):
    backend = tracking.LocalBackend(tmp_path / "logs")
    backend.log_params({"epochs": 2})
    backend.log_metrics({"loss": 2.1, "accuracy": 0.2, "val_loss": 2.0, "val_accuracy": 0.25}, step=1)
    backend.log_metrics({"loss": 1.5, "accuracy": 0.4, "val_loss": 1.6, "val_accuracy": 0.38}, step=2)
    backend.log_metrics({"test_accuracy": 0.37}, step=2)
    backend.close("completed")
    records = tracking.read_local_log(tmp_path)  # the outputs folder
    assert [r["kind"] for r in records] == ["params", "metrics", "metrics", "metrics", "end"]
    history = tracking.metric_history(records)
    assert history["step"] == [1, 2, 2]
    assert history["loss"] == [2.1, 1.5, None] and history["test_accuracy"] == [None, None, 0.37]
    fig = visualize.training_curves(history)
    loss_ax, accuracy_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["loss", "val_loss"]
    np.testing.assert_array_equal(accuracy_ax.lines[1].get_ydata(), [0.25, 0.38, None])


def test_run_log_errors_name_the_line(tmp_path: Path):
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"kind": "params", "values": {}}\n{"kind": "metrics", "values": {"loss": 1}\n')
    with pytest.raises(ValueError, match=r"metrics\.jsonl:2: not a JSON object"):
        tracking.read_local_log(log)
    log.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match=r"metrics\.jsonl:1: expected an object with a 'kind' field"):
        tracking.read_local_log(log)
