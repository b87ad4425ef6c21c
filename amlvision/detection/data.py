"""Detection training data: which files a ``--data`` value names, the held-out split, and box-aware augmentation.

``resolve_detection_data`` is a small local stand-in for the project resolver's ``coco:`` kind
(issue-9d, amlvision/data/resolve.py): it accepts ``coco:PATH`` or a path to a COCO instances
JSON, or a COCO-layout folder (``annotations/instances_<split>.json`` + ``<split>/``). When the
resolver lands, :func:`is_detection_data` and :func:`resolve_detection_data` become its calls.

Augmentation uses torchvision.transforms.v2 on ``tv_tensors.BoundingBoxes``, so a flip or a zoom
moves the boxes with the pixels: horizontal flip, scale jitter (a zoom in or out about the centre
on an unchanged canvas, so the model's own resize does not undo it) and photometric distortion.
Boxes pushed off the canvas are clamped, and those left degenerate are dropped with their labels.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from amlvision.detection.annotations import DetectionSet, ImageBoxes
from amlvision.detection.coco import read_coco

COCO_PREFIX = "coco:"
TRAIN_SPLITS = ("train", "train2017", "train2014")
HELDOUT_SPLITS = ("val", "val2017", "val2014", "test", "test2017")
SCALE_JITTER = (0.75, 1.25)  # zoom range of the training augmentation


def _strip(data: str) -> str:
    return data[len(COCO_PREFIX) :] if data.startswith(COCO_PREFIX) else data


def is_detection_data(data: str) -> bool:
    """``coco:...``, a ``.json`` file, or a folder holding ``annotations/instances_*.json``."""
    if data.startswith(COCO_PREFIX) or data.endswith(".json"):
        return True
    folder = Path(data)
    return folder.is_dir() and any((folder / "annotations").glob("instances_*.json"))


@dataclass
class DetectionData:
    """The training and held-out sets of one run, with where they came from."""

    train: DetectionSet
    heldout: DetectionSet
    heldout_name: str  # "val2017" (the data's own split) or "validation" (drawn from the training JSON)
    split: dict[str, Any]
    checksum: str

    @property
    def class_names(self) -> list[str]:
        return self.train.class_names


def _subset(data: DetectionSet, indexes: list[int]) -> DetectionSet:
    return DetectionSet(
        data.class_names, [data.images[i] for i in indexes], data.category_ids, data.invalid, data.source
    )


def _checksum(*files: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _split_json(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        path = folder / "annotations" / f"instances_{name}.json"
        if path.is_file():
            return path
    return None


def resolve_detection_data(data: str, val_fraction: float, seed: int) -> DetectionData:
    """Read the training JSON and find or draw the held-out split (see the module docstring)."""
    path = Path(_strip(data))
    if path.is_dir():
        train_json, heldout_json = _split_json(path, TRAIN_SPLITS), _split_json(path, HELDOUT_SPLITS)
        if train_json is None:
            raise FileNotFoundError(f"{path}: no annotations/instances_{{{','.join(TRAIN_SPLITS)}}}.json")
    elif path.is_file():
        train_json = path
        sibling = path.name.replace("train", "val") if "train" in path.name else None
        heldout_json = path.with_name(sibling) if sibling and path.with_name(sibling).is_file() else None
    else:
        raise FileNotFoundError(f"--data {data}: no COCO instances JSON or COCO folder at {path}")
    train = read_coco(train_json)
    if heldout_json is not None:
        heldout = read_coco(heldout_json)
        if heldout.category_ids != train.category_ids:
            raise ValueError(f"{heldout_json}: its categories differ from {train_json}'s")
        return DetectionData(
            train,
            heldout,
            heldout_json.stem.split("_", 1)[-1],
            {"train": str(train_json), "heldout": str(heldout_json)},
            _checksum(train_json, heldout_json),
        )
    if not 0 < val_fraction < 1:
        raise ValueError(f"{train_json}: no held-out JSON beside it and --val-fraction {val_fraction} draws none")
    order = np.random.default_rng(seed).permutation(len(train.images))
    count = max(1, round(len(order) * val_fraction))
    val_idx, train_idx = sorted(order[:count].tolist()), sorted(order[count:].tolist())
    return DetectionData(
        _subset(train, train_idx),
        _subset(train, val_idx),
        "validation",
        {"train": str(train_json), "validation_indexes": val_idx, "val_fraction": val_fraction, "seed": seed},
        _checksum(train_json),
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
