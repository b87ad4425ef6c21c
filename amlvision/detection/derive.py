"""Classification data derived from box annotations: the four ways to turn a detection set into labels.

COCO is not a classification data set: an image holds several objects of several categories. Each
mode below is one honest answer to "what is this image's label?", and comparing them (``amlvision
why``) measures why a CIFAR-style classifier does badly on COCO:

- ``dominant``: one label per image, the category with the largest annotated area (sum of its
  boxes' areas, crowd regions included);
- ``crops``: every non-crowd box cut out as its own sample, widened by ``context`` (a fraction of the
  box's width/height on each side), boxes whose shorter side is under ``min_size`` pixels skipped;
- ``multilabel``: every category present in the image (a multi-hot target per image);
- ``context``: the ``dominant`` label, with every box of that category filled with the image's
  mean colour, so a model can only learn it from what surrounds the object (the box's outline
  remains visible as a flat rectangle; that is the limit of box annotations).

Images without boxes carry no label and are left out (counted in ``DerivedSplit.dropped``).
Samples are resized to the model input (``width x height``, bilinear, aspect not kept: the same
squeeze the CIFAR path applies) and written as a packed directory the normal classification path
trains on. For ``multilabel``, the packed labels are each sample's row in ``<split>.targets.npy``
(``N x K`` uint8 multi-hot) beside the packed directory, so sampling, augmentation and sharding
carry the target through unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from amlvision.data.images import load_image
from amlvision.detection.annotations import DetectionSet, ImageBoxes

MODES = ("dominant", "crops", "multilabel", "context")
TARGETS_SUFFIX = ".targets.npy"
DERIVED_VERSION = 1


@dataclass
class DerivedSplit:
    """One split's samples: images at the model size, labels, and where each sample came from."""

    images: np.ndarray  # uint8 N x H x W x 3
    labels: np.ndarray  # int64 N: the class (dominant/crops/context) or the row in ``targets`` (multilabel)
    targets: np.ndarray  # uint8 N x K multi-hot of the categories in the source image (every mode)
    source_image: np.ndarray  # int64 N: index of the image in the DetectionSet
    dropped: int = 0  # images without any box


def category_areas(image: ImageBoxes, num_classes: int) -> np.ndarray:
    """Annotated box area per category in one image (pixels of the original image)."""
    return np.bincount(image.labels, weights=image.areas.astype(np.float64), minlength=num_classes)


def dominant_label(image: ImageBoxes, num_classes: int) -> int:
    """The category covering the largest annotated area; -1 for an image without boxes."""
    if not len(image.labels):
        return -1
    return int(np.argmax(category_areas(image, num_classes)))


def present_categories(image: ImageBoxes, num_classes: int) -> np.ndarray:
    """Multi-hot uint8 [K] of the categories with at least one box in the image."""
    hot = np.zeros(num_classes, np.uint8)
    hot[image.labels] = 1
    return hot


def _resize(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``size`` is (width, height); bilinear like the rest of the classification path."""
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR), np.uint8)


def crop_box(
    box: np.ndarray, width: int, height: int, context: float, min_size: float
) -> tuple[int, int, int, int] | None:
    """Integer crop window for ``box`` widened by ``context`` per side, clipped; None if under ``min_size``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if min(x2 - x1, y2 - y1) < min_size:
        return None
    dx, dy = (x2 - x1) * context, (y2 - y1) * context
    left, top = max(0, int(np.floor(x1 - dx))), max(0, int(np.floor(y1 - dy)))
    right, bottom = min(width, int(np.ceil(x2 + dx))), min(height, int(np.ceil(y2 + dy)))
    if right <= left or bottom <= top:
        return None
    return left, top, right, bottom


def mask_category(pixels: np.ndarray, image: ImageBoxes, label: int) -> np.ndarray:
    """A copy of ``pixels`` with every box of ``label`` filled with the image's mean colour."""
    out = pixels.copy()
    fill = pixels.reshape(-1, pixels.shape[2]).mean(axis=0).round().astype(np.uint8)
    for box in image.boxes[image.labels == label]:
        x1, y1 = int(np.floor(box[0])), int(np.floor(box[1]))
        x2, y2 = int(np.ceil(box[2])), int(np.ceil(box[3]))
        out[y1:y2, x1:x2] = fill
    return out


def derive_split(
    dataset: DetectionSet, mode: str, size: tuple[int, int], *, context: float = 0.0, min_size: float = 0.0
) -> DerivedSplit:
    """Samples of one split for ``mode`` at ``size`` = (width, height); see the module docstring."""
    if mode not in MODES:
        raise ValueError(f"from-boxes mode must be one of {MODES}, got {mode!r}")
    k = len(dataset.class_names)
    images, labels, targets, sources, dropped = [], [], [], [], 0
    for index, image in enumerate(dataset.images):
        if not len(image.labels):
            dropped += 1
            continue
        pixels = load_image(image.path, channels=3)
        if pixels.shape[:2] != (image.height, image.width):
            raise ValueError(
                f"{image.path}: the image is {pixels.shape[1]}x{pixels.shape[0]}, its annotation says "
                f"{image.width}x{image.height} ({dataset.source})"
            )
        hot = present_categories(image, k)
        dominant = dominant_label(image, k)
        if mode == "crops":
            for box, label, crowd in zip(image.boxes, image.labels, image.iscrowd, strict=True):
                window = None if crowd else crop_box(box, image.width, image.height, context, min_size)
                if window is None:
                    continue
                left, top, right, bottom = window
                images.append(_resize(pixels[top:bottom, left:right], size))
                labels.append(int(label))
                targets.append(hot)
                sources.append(index)
            continue
        if mode == "context":
            pixels = mask_category(pixels, image, dominant)
        images.append(_resize(pixels, size))
        labels.append(len(labels) if mode == "multilabel" else dominant)
        targets.append(hot)
        sources.append(index)
    width, height = size
    return DerivedSplit(
        images=np.stack(images) if images else np.zeros((0, height, width, 3), np.uint8),
        labels=np.asarray(labels, np.int64),
        targets=np.stack(targets) if targets else np.zeros((0, k), np.uint8),
        source_image=np.asarray(sources, np.int64),
        dropped=dropped,
    )


def find_annotation_files(data: str | Path) -> dict[str, Path]:
    """``{split: instances JSON}`` for a COCO root (``annotations/instances_<split>.json``) or one JSON file."""
    data = Path(data)
    if data.is_file():
        return {"train": data}
    files = sorted((data / "annotations").glob("instances_*.json")) or sorted(data.glob("instances_*.json"))
    if not files:
        raise FileNotFoundError(f"{data}: no annotations/instances_<split>.json (COCO layout) to derive labels from")
    return {f.stem.split("_", 1)[1]: f for f in files}


def split_names(files: dict[str, Path]) -> tuple[str, str | None]:
    """(training split, held-out split) among COCO's split names (train2017/val2017, train/val, ...)."""
    train = next((s for s in files if s.startswith("train")), None)
    heldout = next((s for s in files if s.startswith(("val", "test"))), None)
    if train is None:
        raise ValueError(f"no training split among {sorted(files)} (expected instances_train*.json)")
    return train, heldout


def derived_key(files: dict[str, Path], mode: str, size: tuple[int, int], context: float, min_size: float) -> str:
    digest = hashlib.sha256(f"v{DERIVED_VERSION}:{mode}:{size}:{context}:{min_size}".encode())
    for split in sorted(files):
        digest.update(f"{split}:{hashlib.sha256(files[split].read_bytes()).hexdigest()}".encode())
    return digest.hexdigest()[:12]


def derive_packed(
    data: str | Path,
    mode: str,
    size: tuple[int, int],
    out_root: str | Path,
    *,
    context: float = 0.0,
    min_size: float = 0.0,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> Path:
    """Derive ``mode`` samples from the COCO data at ``data`` into a packed directory under ``out_root``.

    The held-out split is the data's ``val*`` JSON when it has one, else a seeded ``val_fraction`` of
    the training images (split by image, so crops of one image never sit on both sides). Written
    once per (annotations, mode, size, options); the packed directory's name carries that key.
    """
    from amlvision.detection.coco import read_coco
    from amlvision.formats.packed import is_packed, write_packed

    files = find_annotation_files(data)
    train_name, heldout_name = split_names(files)
    out = Path(out_root) / f"{mode}-{size[0]}x{size[1]}-{derived_key(files, mode, size, context, min_size)}"
    if is_packed(out):
        return out
    sets = {"train": read_coco(files[train_name])}
    if heldout_name is not None:
        sets["val"] = read_coco(files[heldout_name])
    else:
        whole = sets.pop("train")
        order = np.random.default_rng(seed).permutation(len(whole.images))
        n_val = max(1, int(round(len(order) * val_fraction)))
        val_ids = set(order[:n_val].tolist())
        pick = lambda keep: [im for i, im in enumerate(whole.images) if (i in val_ids) == keep]  # noqa: E731
        sets["train"] = DetectionSet(whole.class_names, pick(False), whole.category_ids, source=whole.source)
        sets["val"] = DetectionSet(whole.class_names, pick(True), whole.category_ids, source=whole.source)
    class_names = sets["train"].class_names
    if sets["val"].class_names != class_names:
        raise ValueError(f"{files[heldout_name]}: its categories differ from {files[train_name]}'s")
    derived = {split: derive_split(ds, mode, size, context=context, min_size=min_size) for split, ds in sets.items()}
    for split, part in derived.items():
        if not len(part.labels):
            raise ValueError(f"{data}: the {split} split yields no {mode} samples (no boxes, or all under min size)")
    out.parent.mkdir(parents=True, exist_ok=True)
    for split, part in derived.items():  # beside the packed directory, which is renamed into place last
        np.save(out.parent / f"{out.name}.{split}{TARGETS_SUFFIX}", part.targets)
    record = {
        "derived_from_boxes": mode,
        "annotations": {
            split: str(files[name])
            for split, name in (("train", train_name), ("val", heldout_name))
            if name is not None
        },  # fmt: skip
        "size": list(size),
        "context": context,
        "min_size": min_size,
        "dropped_images_without_boxes": {split: part.dropped for split, part in derived.items()},
        "labels": "row in <dir>.<split>.targets.npy" if mode == "multilabel" else "class index",
    }
    write_packed(out, {s: (p.images, p.labels) for s, p in derived.items()}, class_names, source=record)
    return out


def load_targets(packed_dir: str | Path, split: str) -> np.ndarray:
    """The multi-hot targets ``N x K`` written beside a derived packed directory."""
    packed_dir = Path(packed_dir)
    path = packed_dir.parent / f"{packed_dir.name}.{split}{TARGETS_SUFFIX}"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: multi-hot targets of {packed_dir} are missing (derive it again)")
    return np.load(path)


def derived_record(packed_dir: str | Path) -> dict:
    """The derivation options recorded in a derived packed directory's manifest."""
    manifest = json.loads((Path(packed_dir) / "manifest.json").read_text())
    return dict(manifest.get("source") or {})
