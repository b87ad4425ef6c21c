"""The ``amlvision inspect`` report for detection data: what a trainer will see, and what it will not.

Per split: images, boxes per class, box sizes in COCO's buckets (small < 32², medium < 96², large;
measured on the box area, where COCOeval uses the segmentation area when there is one), crowd and
difficult boxes, images without boxes, annotated images missing on disk, and every invalid box or
file that the reader skipped, by file and index.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from amlvision.detection.annotations import DetectionSet

SMALL, MEDIUM = 32**2, 96**2  # COCO's area boundaries (pycocotools' areaRng)


def split_summary(dataset: DetectionSet) -> dict:
    labels = np.concatenate([im.labels for im in dataset.images]) if dataset.images else np.zeros(0, np.int64)
    areas = np.concatenate([im.areas for im in dataset.images]) if dataset.images else np.zeros(0)
    counts = np.bincount(labels, minlength=len(dataset.class_names))
    return {
        "images": len(dataset.images),
        "boxes": int(len(labels)),
        "boxes_per_class": {name: int(n) for name, n in zip(dataset.class_names, counts, strict=True)},
        "sizes": {
            "small": int((areas < SMALL).sum()),
            "medium": int(((areas >= SMALL) & (areas < MEDIUM)).sum()),
            "large": int((areas >= MEDIUM).sum()),
        },
        "crowd": int(sum(int(im.iscrowd.sum()) for im in dataset.images)),
        "difficult": int(sum(int(im.difficult.sum()) for im in dataset.images)),
        "images_without_boxes": [str(im.path) for im in dataset.images if len(im.labels) == 0],
        "missing_images": [str(im.path) for im in dataset.images if not im.path.is_file()],
        "invalid": [{"source": b.source, "index": b.index, "reason": b.reason} for b in dataset.invalid],
    }


def detection_summary(path: str | Path, fmt: str, splits: Mapping[str, DetectionSet]) -> dict:
    first = next(iter(splits.values()))
    return {
        "path": str(path),
        "format": fmt,
        "task": "detection",
        "classes": list(first.class_names),
        "splits": {split: split_summary(ds) for split, ds in splits.items()},
    }


def format_detection_summary(summary: dict, max_items: int = 20) -> str:
    """Text for people: tables per split; every invalid box is listed (they are what needs fixing)."""
    lines = [f"{summary['path']}: {summary['format']} detection data, {len(summary['classes'])} classes"]
    for split, s in summary["splits"].items():
        sizes = s["sizes"]
        lines += [
            "",
            f"[{split}] {s['images']} images, {s['boxes']} boxes "
            f"(small {sizes['small']}, medium {sizes['medium']}, large {sizes['large']}; "
            f"crowd {s['crowd']}, difficult {s['difficult']})",
        ]
        width = max((len(n) for n in s["boxes_per_class"]), default=5)
        lines.append(f"  {'class'.ljust(width)}  boxes")
        lines += [f"  {name.ljust(width)}  {n:5d}" for name, n in s["boxes_per_class"].items()]
        empty = s["images_without_boxes"]
        lines.append(f"  images without boxes: {len(empty)}")
        lines += [f"    {p}" for p in empty[:max_items]]
        if len(empty) > max_items:
            lines.append(f"    ... {len(empty) - max_items} more (--max-items, or --json for all)")
        missing = s["missing_images"]
        if missing:  # annotations that point to no file: usually a wrong images folder
            lines.append(f"  annotated images missing on disk: {len(missing)}")
            lines += [f"    {p}" for p in missing[:max_items]]
            if len(missing) > max_items:
                lines.append(f"    ... {len(missing) - max_items} more (--max-items, or --json for all)")
        lines.append(f"  invalid boxes or files skipped: {len(s['invalid'])}")
        lines += [f"    {b['source']}: {b['reason']}" for b in s["invalid"]]
    return "\n".join(lines)
