"""Small detection data sets cut from coco-tiny (real COCO 2017 images) for tests, the notebook and the README run.

A handful of training images with large objects is what an overfit check needs: a detector that
learns must fit them within a few dozen steps, even from random weights.
"""

from __future__ import annotations

import json
from pathlib import Path

from amlvision.testing.datasets import SHARED_DATA

COCO_TINY = SHARED_DATA / "coco-tiny"
# coco-tiny training images with few, large boxes: a bear; two giraffes
FEW_IMAGES = ("000000542720.jpg", "000000057345.jpg")


def coco_subset(out: Path, file_names: tuple[str, ...] = FEW_IMAGES, source: Path = COCO_TINY) -> Path:
    """A COCO folder at ``out`` whose train2017 and val2017 are the same few coco-tiny training images.

    Only the categories present are kept (a small data set of its own, as a user's would be); the
    image folders are links to coco-tiny's. Returns ``out``.
    """
    raw = json.loads((source / "annotations" / "instances_train2017.json").read_text())
    images = [im for im in raw["images"] if im["file_name"] in file_names]
    missing = set(file_names) - {im["file_name"] for im in images}
    if missing:
        raise FileNotFoundError(f"{source}: no training images {sorted(missing)}")
    ids = {im["id"] for im in images}
    annotations = [a for a in raw["annotations"] if a["image_id"] in ids]
    used = {a["category_id"] for a in annotations}
    subset = {**raw, "images": images, "annotations": annotations}
    subset["categories"] = [c for c in raw["categories"] if c["id"] in used]
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    for split in ("train2017", "val2017"):
        (out / "annotations" / f"instances_{split}.json").write_text(json.dumps(subset))
        link = out / split
        if not link.exists():
            link.symlink_to((source / "train2017").resolve())
    return out
