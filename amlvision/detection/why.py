"""The numbers behind "why does a CIFAR-style classifier do badly on COCO?", measured on the user's own data.

Everything is computed from a :class:`DetectionSet` (train and held-out split), so the same
functions describe COCO, a VOC set, a defect data set, or a class-folder set such as CIFAR-10
turned into one full-frame box per image (:func:`folder_as_boxes`). Definitions, stated once:

- an object's area is its box's ``w x h`` in original pixels (COCO's own small/medium/large
  buckets use the segmentation area; boxes are what every format has): small < 32^2, medium
  < 96^2, large otherwise;
- an object's size after resizing the image to an ``S x S`` input is ``sqrt(w' h')`` of its
  resized box (``w' = w S / W``, ``h' = h S / H``), the side of a square of the same area;
- class imbalance counts instances per class over the classes that occur (max/min ratio and the
  Gini coefficient of those counts: 0 = all equal, towards 1 = one class holds all);
- an image is ambiguous when its dominant category covers under half of its annotated area
  (summed box areas);
- baselines look at the training split only and are scored on the held-out split: the
  majority class (top-1 of the most frequent dominant label) and the class-prior mAP (every image
  scored with each class's training frequency).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from amlvision.detection.annotations import DetectionSet, ImageBoxes
from amlvision.detection.derive import category_areas, dominant_label, present_categories

SMALL, MEDIUM = 32**2, 96**2
INPUT_SIZES = (32, 64)
TINY_PIXELS = (2, 4)


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0: all equal; (n-1)/n: one holds everything)."""
    x = np.sort(np.asarray(counts, np.float64))
    if not len(x) or x.sum() == 0:
        return 0.0
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def _histogram(values: list[int]) -> dict[str, int]:
    return {str(k): v for k, v in sorted(Counter(values).items())}


def object_sizes(images: list[ImageBoxes], input_size: int) -> np.ndarray:
    """Each object's side (sqrt of area) in pixels after resizing its image to ``input_size`` square."""
    sides = [
        np.sqrt((image.boxes[:, 2] - image.boxes[:, 0]) * input_size / image.width
                * (image.boxes[:, 3] - image.boxes[:, 1]) * input_size / image.height)
        for image in images
    ]  # fmt: skip
    return np.concatenate(sides) if sides else np.zeros(0)


def dataset_statistics(train: DetectionSet, heldout: DetectionSet | None = None) -> dict[str, Any]:
    """Every data statistic of the report (see module docstring), over train + held-out images."""
    names = train.class_names
    k = len(names)
    images = train.images + (heldout.images if heldout is not None else [])
    n_images = len(images)
    instances = [len(im.labels) for im in images]
    categories = [len(np.unique(im.labels)) for im in images]
    counts = np.bincount(np.concatenate([im.labels for im in images]) if images else [], minlength=k)[:k]
    images_with = np.sum([present_categories(im, k) for im in images], axis=0) if images else np.zeros(k)
    present = counts[counts > 0]
    largest = int(np.argmax(counts))
    areas = np.concatenate([im.areas for im in images]) if images else np.zeros(0)
    annotated = [im for im in images if len(im.labels)]
    dominant_share = [float(category_areas(im, k).max() / max(category_areas(im, k).sum(), 1e-12)) for im in annotated]
    sizes = {}
    for size in INPUT_SIZES:
        sides = object_sizes(images, size)
        sizes[f"{size}x{size}"] = {
            "median_side_px": float(np.median(sides)) if len(sides) else None,
            **{f"share_under_{t}px": float(np.mean(sides < t)) if len(sides) else None for t in TINY_PIXELS},
        }
    stats: dict[str, Any] = {
        "images": n_images,
        "images_without_boxes": n_images - len(annotated),
        "instances": int(sum(instances)),
        "classes": k,
        "classes_present": int(len(present)),
        "instances_per_image": {
            "mean": float(np.mean(instances)),
            "max": int(max(instances, default=0)),
            "histogram": _histogram(instances),
        },  # fmt: skip
        "categories_per_image": {
            "mean": float(np.mean(categories)),
            "max": int(max(categories, default=0)),
            "histogram": _histogram(categories),
        },  # fmt: skip
        "share_images_2plus_categories": float(np.mean(np.asarray(categories) >= 2)) if n_images else 0.0,
        "imbalance_max_min_ratio": float(present.max() / present.min()) if len(present) else None,
        "imbalance_gini": gini(present),
        "largest_class": names[largest],
        "largest_class_share_of_instances": float(counts[largest] / max(1, counts.sum())),
        "largest_class_share_of_images": float(images_with[largest] / max(1, n_images)),
        "instances_per_class": {names[i]: int(c) for i, c in enumerate(counts)},
        "coco_size_shares": {
            "small": float(np.mean(areas < SMALL)) if len(areas) else None,
            "medium": float(np.mean((areas >= SMALL) & (areas < MEDIUM))) if len(areas) else None,
            "large": float(np.mean(areas >= MEDIUM)) if len(areas) else None,
        },
        "resized_object_size": sizes,
        "share_ambiguous_images": float(np.mean(np.asarray(dominant_share) < 0.5)) if annotated else 0.0,
        "dominant_label_area_share": {
            "median": float(np.median(dominant_share)) if annotated else None,
            "values": [round(v, 4) for v in dominant_share],
        },
    }
    if heldout is not None:
        stats["baselines"] = baselines(train, heldout)
    return stats


def baselines(train: DetectionSet, heldout: DetectionSet) -> dict[str, Any]:
    """No-look baselines fitted on ``train`` and scored on ``heldout`` (see module docstring)."""
    k = len(train.class_names)
    train_dominant = np.array([dominant_label(im, k) for im in train.images if len(im.labels)])
    test_dominant = np.array([dominant_label(im, k) for im in heldout.images if len(im.labels)])
    majority = int(np.bincount(train_dominant, minlength=k).argmax()) if len(train_dominant) else 0
    train_boxes = np.concatenate([im.labels for im in train.images]) if train.images else np.zeros(0, int)
    test_boxes = np.concatenate([im.labels for im in heldout.images]) if heldout.images else np.zeros(0, int)
    crop_majority = int(np.bincount(train_boxes, minlength=k).argmax()) if len(train_boxes) else 0
    hot = lambda ds: np.array([present_categories(im, k) for im in ds.images if len(im.labels)])  # noqa: E731
    return {
        "majority_class": train.class_names[majority],
        "majority_top1_dominant": float(np.mean(test_dominant == majority)) if len(test_dominant) else None,
        "majority_top1_crops": float(np.mean(test_boxes == crop_majority)) if len(test_boxes) else None,
        "class_prior_map": class_prior_map(hot(train), hot(heldout)),
    }


def folder_as_boxes(items: Any, class_names: list[str], max_size_reads: int = 5000) -> DetectionSet:
    """A class-folder split (``LabeledImages``) as one full-frame box per image, for the contrast column.

    CIFAR-10 has one object per image filling the frame, so its box is the whole image. Image sizes
    are read from the headers of up to ``max_size_reads`` evenly spaced files; the rest are assumed
    to share the most common size (CIFAR's are all 32x32).
    """
    from PIL import Image

    n = len(items)
    step = max(1, n // max_size_reads)
    sizes = {}
    for i in range(0, n, step):
        with Image.open(items.paths[i]) as img:
            sizes[i] = img.size
    common = Counter(sizes.values()).most_common(1)[0][0] if sizes else (32, 32)
    images = []
    for i in range(n):
        w, h = sizes.get(i, common)
        images.append(ImageBoxes(Path(items.paths[i]), w, h, [[0, 0, w, h]], [int(items.labels[i])], image_id=i))
    return DetectionSet(list(class_names), images, source=str(items.paths[0]) if n else "")


def class_prior_map(train_targets: np.ndarray, test_targets: np.ndarray) -> dict[str, float | None]:
    """mAP of the no-look baseline that scores every image with each class's training frequency.

    A constant score ranks every image equally, so each class's AP is its held-out prevalence;
    scikit-learn computes it rather than this formula being assumed.
    """
    prior = np.asarray(train_targets, np.float64).mean(axis=0)
    scores = np.broadcast_to(prior, test_targets.shape)
    defined = test_targets.sum(axis=0) > 0
    if not defined.any():
        return {"map_macro": None, "map_micro": None}
    return {
        "map_macro": float(average_precision_score(test_targets[:, defined], scores[:, defined], average="macro")),
        "map_micro": float(average_precision_score(test_targets, scores, average="micro")),
    }
