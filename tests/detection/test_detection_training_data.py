"""Detection training data: boxes move with the pixels under augmentation; the held-out split is found or drawn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from amlvision.detection.annotations import DetectionSet, ImageBoxes
from amlvision.detection.data import DetectionDataset, epoch_order, resolve_detection_data, training_transform
from amlvision.testing.detection import COCO_TINY, coco_subset


def _white_box_image(tmp_path: Path) -> DetectionSet:
    """A black 120x90 image with a white rectangle exactly where its one box is."""
    pixels = np.zeros((90, 120, 3), np.uint8)
    pixels[20:60, 10:50] = 255
    path = tmp_path / "box.png"
    Image.fromarray(pixels).save(path)
    image = ImageBoxes(path, 120, 90, np.array([[10, 20, 50, 60]], np.float32), np.array([0]))
    return DetectionSet(["thing"], [image])


def _bright_extent(image: torch.Tensor) -> list[float]:
    ys, xs = np.nonzero(image.mean(0).numpy() > 0.5)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_flip_and_zoom_move_the_box_with_the_pixels(tmp_path: Path):
    data = _white_box_image(tmp_path)
    dataset = DetectionDataset(data, training_transform(flip=True, photometric=False))
    flipped = zoomed = 0
    for seed in range(12):
        torch.manual_seed(seed)
        image, target = dataset[0]
        assert image.dtype == torch.float32 and image.shape == (3, 90, 120) and float(image.max()) <= 1.0
        (box,) = target["boxes"].tolist()
        assert box == pytest.approx(_bright_extent(image), abs=2.0), seed
        flipped += box[0] > 60
        zoomed += abs((box[2] - box[0]) - 40) > 2
        assert target["labels"].tolist() == [1]  # torchvision label: class 0 + 1 (0 is background)
    assert flipped and flipped < 12 and zoomed  # both augmentations happened, not always


def test_photometric_changes_pixels_not_boxes(tmp_path: Path):
    data = _white_box_image(tmp_path)
    plain = DetectionDataset(data, training_transform(flip=False, scale_jitter=(1.0, 1.0), photometric=False))[0][0]
    dataset = DetectionDataset(data, training_transform(flip=False, scale_jitter=(1.0, 1.0), photometric=True))
    changed = 0
    for seed in range(8):
        torch.manual_seed(seed)
        image, target = dataset[0]
        assert target["boxes"].tolist() == [[10, 20, 50, 60]]
        changed += not torch.equal(image, plain)
    assert changed


def test_a_box_zoomed_off_the_canvas_is_dropped_with_its_label(tmp_path: Path):
    pixels = np.zeros((90, 120, 3), np.uint8)
    path = tmp_path / "corner.png"
    Image.fromarray(pixels).save(path)
    boxes = np.array([[0, 0, 3, 3], [40, 30, 80, 60]], np.float32)
    data = DetectionSet(["a", "b"], [ImageBoxes(path, 120, 90, boxes, np.array([0, 1]))])
    dataset = DetectionDataset(data, training_transform(flip=False, scale_jitter=(1.25, 1.25), photometric=False))
    _, target = dataset[0]
    assert target["labels"].tolist() == [2] and len(target["boxes"]) == 1


def test_coco_folder_uses_its_val_split_and_a_lone_json_draws_one(tmp_path: Path):
    both = resolve_detection_data(str(COCO_TINY), 0.1, 0)
    assert (len(both.train.images), len(both.heldout.images), both.heldout_name) == (80, 80, "val2017")
    lone = tmp_path / "lone.json"
    lone.write_text((COCO_TINY / "annotations" / "instances_train2017.json").read_text())
    drawn = resolve_detection_data(f"coco:{lone}", 0.25, 3)
    assert (len(drawn.train.images), len(drawn.heldout.images), drawn.heldout_name) == (60, 20, "validation")
    train_paths = {im.path.name for im in drawn.train.images}
    assert not train_paths & {im.path.name for im in drawn.heldout.images}
    assert (
        drawn.split["validation_indexes"] == resolve_detection_data(f"coco:{lone}", 0.25, 3).split["validation_indexes"]
    )
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        resolve_detection_data("coco:/nonexistent/instances.json", 0.1, 0)


def test_subset_keeps_only_present_categories(tmp_path: Path):
    root = coco_subset(tmp_path / "few")
    raw = json.loads((root / "annotations" / "instances_val2017.json").read_text())
    assert [c["name"] for c in raw["categories"]] == ["bear", "giraffe"]
    data = resolve_detection_data(str(root), 0.1, 0)
    assert data.class_names == ["bear", "giraffe"] and data.train.num_boxes == 3


def test_epoch_order_is_a_seeded_permutation_dealt_to_ranks():
    assert sorted(epoch_order(10, 1, 0)) == list(range(10))
    assert epoch_order(10, 1, 0) == epoch_order(10, 1, 0) != epoch_order(10, 1, 1)
    ranks = [epoch_order(11, 1, 0, rank, 2) for rank in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 5 and not set(ranks[0]) & set(ranks[1])
