"""The four derivations on the real coco-tiny annotations, checked against the raw JSON."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from PIL import Image

from amlvision.detection.coco import read_coco
from amlvision.detection.derive import crop_box, derive_packed, derive_split, load_targets, mask_category
from amlvision.formats.packed import PackedDataset


def _raw_per_image(raw: dict) -> tuple[list[int], dict[int, list[dict]], list[int]]:
    """Image ids in file order, annotations per image, category ids sorted (the contiguous index order)."""
    per_image = defaultdict(list)
    for ann in raw["annotations"]:
        per_image[ann["image_id"]].append(ann)
    return [im["id"] for im in raw["images"]], per_image, sorted(c["id"] for c in raw["categories"])


def test_dominant_and_multilabel_targets_follow_the_raw_boxes(coco_tiny, raw_coco):
    ds = read_coco(coco_tiny / "annotations" / "instances_val2017.json")
    part = derive_split(ds, "dominant", (16, 16))
    ids, per_image, cats = _raw_per_image(raw_coco["val"])
    expected_labels, expected_hot = [], []
    for image_id in ids:
        anns = per_image[image_id]
        if not anns:
            continue
        area = defaultdict(float)
        for ann in anns:
            area[ann["category_id"]] += ann["bbox"][2] * ann["bbox"][3]
        expected_labels.append(cats.index(max(area, key=area.get)))
        expected_hot.append([int(c in area) for c in cats])
    assert part.labels.tolist() == expected_labels
    assert part.targets.tolist() == expected_hot
    assert part.images.shape == (len(expected_labels), 16, 16, 3)
    multi = derive_split(ds, "multilabel", (16, 16))
    assert multi.labels.tolist() == list(range(len(expected_labels)))  # rows of the target table
    assert np.array_equal(multi.targets, part.targets)


def test_crops_count_context_and_min_size(coco_tiny, raw_coco):
    ds = read_coco(coco_tiny / "annotations" / "instances_train2017.json")
    min_size = 20.0
    part = derive_split(ds, "crops", (16, 16), context=0.25, min_size=min_size)
    kept = [a for a in raw_coco["train"]["annotations"] if not a["iscrowd"] and min(a["bbox"][2:]) >= min_size]
    assert len(part.labels) == len(kept)
    _, _, cats = _raw_per_image(raw_coco["train"])
    assert sorted(part.labels.tolist()) == sorted(cats.index(a["category_id"]) for a in kept)
    # context widens a 10x20 box by 2.5 / 5 px per side, clipped at the image edge
    assert crop_box(np.array([10, 10, 20, 30]), 100, 100, 0.25, 0) == (7, 5, 23, 35)
    assert crop_box(np.array([0, 0, 10, 10]), 12, 12, 0.5, 0) == (0, 0, 12, 12)
    assert crop_box(np.array([0, 0, 3, 30]), 100, 100, 0.0, 4) is None


def test_context_masks_every_box_of_the_target_class_only(coco_tiny):
    ds = read_coco(coco_tiny / "annotations" / "instances_val2017.json")
    image = next(im for im in ds.images if len(np.unique(im.labels)) >= 2)
    pixels = np.asarray(Image.open(image.path).convert("RGB"))
    target = int(image.labels[0])
    masked = mask_category(pixels, image, target)
    fill = pixels.reshape(-1, 3).mean(0).round()
    inside = np.zeros(pixels.shape[:2], bool)
    for box in image.boxes[image.labels == target]:
        inside[int(np.floor(box[1])) : int(np.ceil(box[3])), int(np.floor(box[0])) : int(np.ceil(box[2]))] = True
    assert (masked[inside] == fill).all()
    assert np.array_equal(masked[~inside], pixels[~inside])


def test_derived_packed_directory_is_written_once_with_targets(coco_tiny, tmp_path):
    out = derive_packed(coco_tiny, "multilabel", (8, 8), tmp_path)
    packed = PackedDataset(out)
    assert sorted(packed.splits) == ["train", "val"]
    assert packed.labels("val").tolist() == list(range(80))
    assert load_targets(out, "val").shape == (80, 80)
    assert derive_packed(coco_tiny, "multilabel", (8, 8), tmp_path) == out  # cached by content key
    with pytest.raises(ValueError, match="from-boxes mode"):
        derive_split(read_coco(coco_tiny / "annotations" / "instances_val2017.json"), "bogus", (8, 8))
