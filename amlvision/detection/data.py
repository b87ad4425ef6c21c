"""Detection training data: which files a ``--data`` value names, the held-out split, and box-aware augmentation.

``resolve_detection_data`` takes the splits from the project resolver (``amlvision.data.resolve``: any
detection kind, named or sniffed) and finds or draws the held-out split.

Augmentation uses torchvision.transforms.v2 on ``tv_tensors.BoundingBoxes``, so a flip or a zoom
moves the boxes with the pixels: horizontal flip, scale jitter (a zoom in or out about the centre
on an unchanged canvas, so the model's own resize does not undo it) and photometric distortion.
Boxes pushed off the canvas are clamped, and those left degenerate are dropped with their labels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from amlvision.data.resolve import Dataset as ResolvedData
from amlvision.data.resolve import resolve
from amlvision.detection.annotations import DetectionSet, ImageBoxes
from amlvision.formats.splits import DERIVED_HELDOUT, HELDOUT_SPLITS, TRAIN_SPLITS, first_present, split_of
from amlvision.model_dir import DETECTION

SCALE_JITTER = (0.75, 1.25)  # zoom range of the training augmentation


@dataclass
class DetectionData:
    """The training and held-out sets of one run, with where they came from."""

    train: DetectionSet
    heldout: DetectionSet
    heldout_name: str  # "val2017" (the data's own split) or "validation" (drawn from the training split)
    split: dict[str, Any]
    checksum: str

    @property
    def class_names(self) -> list[str]:
        return self.train.class_names


def _subset(data: DetectionSet, indexes: list[int]) -> DetectionSet:
    return DetectionSet(
        data.class_names, [data.images[i] for i in indexes], data.category_ids, data.invalid, data.source
    )


def resolve_detection_data(data: str | ResolvedData, val_fraction: float, seed: int) -> DetectionData:
    """The run's training and held-out ``DetectionSet``s from the project resolver (COCO, VOC, CNTK, YOLO).

    ``data`` is ``--data`` or the ``Dataset`` it already resolved to. The held-out split is the data's
    own (``val2017``, VOC's ``val``/``test``) or, when it has none, ``val_fraction`` of the training
    images drawn with ``seed``.
    """
    dataset = data if isinstance(data, ResolvedData) else resolve(data)
    if dataset.task != DETECTION:
        raise ValueError(
            f"--data {dataset.source}: {dataset.kind} data has no boxes; detection reads COCO, VOC, CNTK or YOLO"
        )
    splits: dict[str, DetectionSet] = dataset.collection()
    role = {name: split_of(name) or name for name in splits}
    train_name = next((n for n in splits if role[n] in TRAIN_SPLITS), None)
    if train_name is None and len(splits) == 1:
        train_name = next(iter(splits))
    if train_name is None:
        raise ValueError(f"--data {dataset.source}: no training split among {sorted(splits)}")
    heldout_role = first_present(HELDOUT_SPLITS, [role[n] for n in splits if n != train_name])
    heldout_name = next((n for n in splits if n != train_name and role[n] == heldout_role), None)
    train = splits[train_name]
    checksum = dataset.fingerprint[:16]
    if heldout_name is not None:
        heldout = splits[heldout_name]
        return DetectionData(train, heldout, heldout_name, {"train": train_name, "heldout": heldout_name}, checksum)
    if not 0 < val_fraction < 1:
        raise ValueError(f"--data {dataset.source}: no held-out split and --val-fraction {val_fraction} draws none")
    order = np.random.default_rng(seed).permutation(len(train.images))
    count = max(1, round(len(order) * val_fraction))
    val_idx, train_idx = sorted(order[:count].tolist()), sorted(order[count:].tolist())
    return DetectionData(
        _subset(train, train_idx),
        _subset(train, val_idx),
        DERIVED_HELDOUT,
        {"train": train_name, "validation_indexes": val_idx, "val_fraction": val_fraction, "seed": seed},
        checksum,
    )


def training_transform(
    flip: bool = True, scale_jitter: tuple[float, float] = SCALE_JITTER, photometric: bool = True
) -> v2.Transform:
    """Box-aware augmentation: photometric distortion, horizontal flip, scale jitter; then 0-1 floats."""
    steps: list[v2.Transform] = [v2.RandomPhotometricDistort(p=0.5)] if photometric else []
    if flip:
        steps.append(v2.RandomHorizontalFlip(p=0.5))
    if scale_jitter != (1.0, 1.0):
        steps.append(v2.RandomAffine(degrees=0.0, scale=scale_jitter))
    steps += [v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=1.0), v2.ToDtype(torch.float32, scale=True)]
    return v2.Compose(steps)


def eval_transform() -> v2.Transform:
    return v2.ToDtype(torch.float32, scale=True)


def load_image(image: ImageBoxes) -> tv_tensors.Image:
    """The image as uint8 RGB [3, H, W]; an unreadable file is an error naming it."""
    try:
        with Image.open(image.path) as pil:
            array = np.asarray(pil.convert("RGB"))
    except OSError as exc:
        raise ValueError(f"{image.path}: cannot read the image ({exc})") from exc
    if array.shape[:2] != (image.height, image.width):
        raise ValueError(
            f"{image.path}: the annotations say {image.width}x{image.height}, "
            f"the file is {array.shape[1]}x{array.shape[0]}"
        )
    return tv_tensors.Image(torch.from_numpy(array.copy()).permute(2, 0, 1))


class DetectionDataset(Dataset):
    """(image float [3, H, W] in 0-1, target) pairs in torchvision's detection format.

    Target ``labels`` are torchvision labels (data class + 1; 0 is background). Crowd regions are left
    out of training targets (torchvision's loss has no notion of them); COCOeval still sees them.
    """

    def __init__(self, data: DetectionSet, transform: v2.Transform | None = None):
        self.data = data
        self.transform = transform or eval_transform()

    def __len__(self) -> int:
        return len(self.data.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        item = self.data.images[index]
        keep = ~item.iscrowd
        image = load_image(item)
        target = {
            "boxes": tv_tensors.BoundingBoxes(
                torch.from_numpy(item.boxes[keep]).reshape(-1, 4),
                format="XYXY",
                canvas_size=(item.height, item.width),
            ),
            "labels": torch.from_numpy(item.labels[keep]) + 1,
            "index": torch.tensor(index),
        }
        image, target = self.transform(image, target)
        return image.as_subclass(torch.Tensor), {
            "boxes": target["boxes"].as_subclass(torch.Tensor).float(),
            "labels": target["labels"].long(),
            "index": target["index"],
        }


def collate(batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]]) -> tuple[list, list]:
    """Detection batches are lists: the images differ in size."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)


def epoch_order(size: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> list[int]:
    """This rank's image order for ``epoch``: a permutation fixed by (seed, epoch), dealt round-robin to ranks."""
    order = np.random.default_rng([seed, epoch]).permutation(size).tolist()
    usable = len(order) - len(order) % world_size if world_size > 1 else len(order)
    return order[rank:usable:world_size]


def describe(data: DetectionData) -> str:
    return json.dumps(
        {
            "train_images": len(data.train.images),
            "train_boxes": data.train.num_boxes,
            "heldout": data.heldout_name,
            "heldout_images": len(data.heldout.images),
            "classes": len(data.class_names),
        }
    )
