"""Read and write COCO instances JSON as a :class:`DetectionSet`.

COCO's category ids are not contiguous (1..90 with gaps); they are mapped to contiguous indexes in
id order and kept in ``category_ids``. Segmentations are ignored, crowd boxes are kept and flagged,
images without annotations stay (they are negatives for detection). Invalid boxes (zero or negative
size, outside the image, unknown category, unknown image) are skipped and listed in ``invalid``.

The JSON is decoded with msgspec into small typed records: fields the reader does not use (the
segmentation polygons that make up most of a COCO file, ``info``, ``licenses``) are skipped by the
parser and never become Python objects, so train2017's 450 MB file loads in seconds and a fraction
of the memory ``json.load`` needs (bench/coco_load.py). The box checks run on whole arrays.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from amlvision.detection.annotations import DetectionSet, ImageBoxes, InvalidBox
from amlvision.detection.checks import EDGE_TOLERANCE, box_problems, clip_boxes, warn_skipped

__all__ = ["EDGE_TOLERANCE", "CocoFormatError", "coco_splits", "read_coco", "write_coco", "write_coco_folder"]


class CocoFormatError(ValueError):
    """The JSON is not a COCO instances file; the message names the file and the field."""


class _Image(msgspec.Struct):
    id: Any = None
    file_name: Any = None
    width: Any = None
    height: Any = None


class _Annotation(msgspec.Struct):
    id: Any = None
    image_id: Any = None
    category_id: Any = None
    bbox: Any = None
    iscrowd: Any = 0
    difficult: Any = 0  # written by write_coco for Pascal VOC's flag; absent in COCO's own files


class _Category(msgspec.Struct):
    id: Any = None
    name: Any = None


class _File(msgspec.Struct):
    images: list[_Image]
    annotations: list[_Annotation]
    categories: list[_Category]


def _decode(annotations: Path) -> _File:
    where = str(annotations)
    try:
        data = annotations.read_bytes()
    except OSError as exc:
        raise CocoFormatError(f"{where}: cannot read COCO JSON ({exc})") from exc
    try:
        return msgspec.json.decode(data, type=_File)
    except msgspec.ValidationError as exc:
        # msgspec names the field as a JSON path, e.g. "Expected `array`, got `object` - at `$.images`".
        raise CocoFormatError(f"{where}: not a COCO instances file: {exc}") from exc
    except (msgspec.DecodeError, RecursionError) as exc:  # RecursionError: arrays nested without end
        raise CocoFormatError(f"{where}: cannot read COCO JSON ({exc})") from exc


def _ints(values: list, missing: int) -> np.ndarray:
    """``values`` as int64, with ``missing`` where an entry is not an integer (bools are not)."""
    array = np.asarray(values) if values else np.zeros(0, np.int64)
    if array.ndim == 1 and array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    return np.array([v if isinstance(v, int) and not isinstance(v, bool) else missing for v in values], dtype=np.int64)


def _bboxes(values: list) -> np.ndarray:
    """[n, 4] float64 ``x, y, w, h``; rows that are not four numbers (strings and bools are not) are NaN."""
    try:
        array = np.asarray(values) if values else np.zeros((0, 4))
        if array.shape == (len(values), 4) and array.dtype.kind in "iuf":
            return array.astype(np.float64, copy=False)
    except (TypeError, ValueError):  # rows of different lengths
        pass
    out = np.full((len(values), 4), np.nan)
    for i, v in enumerate(values):
        if (
            isinstance(v, list)
            and len(v) == 4
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
        ):
            out[i] = v
    return out


def _flags(values: list) -> np.ndarray:
    array = np.asarray(values) if values else np.zeros(0, bool)
    if array.ndim == 1 and array.dtype.kind in "biu":
        return array.astype(bool)
    return np.array([bool(v) if isinstance(v, (int, bool)) else False for v in values], dtype=bool)


def read_coco(annotations: str | Path, images_dir: str | Path | None = None) -> DetectionSet:
    """Read ``annotations`` (COCO instances JSON); image files are looked up in ``images_dir``.

    Without ``images_dir`` the images are expected beside the JSON's parent folder under the JSON
    stem's split name (``annotations/instances_val2017.json`` -> ``val2017/``), COCO's own layout.
    """
    annotations = Path(annotations)
    where = str(annotations)
    raw = _decode(annotations)
    if images_dir is None:
        split = annotations.stem.split("_", 1)[-1]
        images_dir = annotations.parent.parent / split
    images_dir = Path(images_dir)

    for i, category in enumerate(raw.categories):
        if isinstance(category.id, bool) or not isinstance(category.id, int) or category.name is None:
            raise CocoFormatError(f"{where}: categories[{i}] lacks an integer id and a name")
    categories = sorted(raw.categories, key=lambda c: c.id)
    category_ids = [c.id for c in categories]
    if len(set(category_ids)) != len(category_ids):
        raise CocoFormatError(f"{where}: categories: duplicate ids")
    class_names = [str(c.name) for c in categories]

    image_ids, widths, heights, files = [], [], [], []
    for i, image in enumerate(raw.images):
        try:
            if isinstance(image.id, bool) or not isinstance(image.id, int):
                raise TypeError(f"id {image.id!r} is not an integer")
            widths.append(int(image.width))
            heights.append(int(image.height))
            files.append(str(image.file_name) if image.file_name is not None else None)
            if files[-1] is None:
                raise TypeError("no file_name")
        except (TypeError, ValueError) as exc:
            raise CocoFormatError(f"{where}: images[{i}] lacks a valid id/file_name/width/height ({exc})") from exc
        image_ids.append(image.id)
    image_ids_array = np.asarray(image_ids, np.int64)
    if len(np.unique(image_ids_array)) != len(image_ids_array):
        raise CocoFormatError(f"{where}: images: duplicate ids")
    widths_array = np.asarray(widths, np.float64)
    heights_array = np.asarray(heights, np.float64)

    anns = raw.annotations
    del raw
    n = len(anns)
    missing = np.iinfo(np.int64).min
    ann_image_ids = _ints([a.image_id for a in anns], missing)
    ann_category_ids = _ints([a.category_id for a in anns], missing)
    xywh = _bboxes([a.bbox for a in anns])
    crowd = _flags([a.iscrowd for a in anns])
    difficult = _flags([a.difficult for a in anns])

    # image and class index of every annotation (-1 where unknown), by sorted-id lookup
    image_order = np.argsort(image_ids_array, kind="stable")
    sorted_image_ids = image_ids_array[image_order]
    pos = np.clip(np.searchsorted(sorted_image_ids, ann_image_ids), 0, max(len(sorted_image_ids) - 1, 0))
    known_image = (sorted_image_ids[pos] == ann_image_ids) if len(sorted_image_ids) else np.zeros(n, bool)
    image_index = np.where(known_image, image_order[pos] if len(image_order) else 0, -1)
    sorted_category_ids = np.asarray(category_ids, np.int64)
    cpos = np.clip(np.searchsorted(sorted_category_ids, ann_category_ids), 0, max(len(category_ids) - 1, 0))
    known_category = (sorted_category_ids[cpos] == ann_category_ids) if category_ids else np.zeros(n, bool)
    labels = np.where(known_category, cpos, -1)

    boxes = xywh.copy()
    boxes[:, 2:] += boxes[:, :2]
    safe_index = np.where(known_image, image_index, 0)
    width_of = widths_array[safe_index] if len(widths_array) else np.zeros(n)
    height_of = heights_array[safe_index] if len(heights_array) else np.zeros(n)
    reasons = box_problems(boxes, width_of, height_of)
    bad_bbox = np.isnan(xywh).any(axis=1)
    bad = ~known_image | ~known_category | bad_bbox | (reasons != "")

    invalid: list[InvalidBox] = []
    for i in np.flatnonzero(bad):
        ann = anns[i]
        if not known_image[i]:
            reason = f"unknown image_id {ann.image_id!r}"
        elif not known_category[i]:
            reason = f"unknown category_id {ann.category_id!r}"
        elif bad_bbox[i]:
            reason = f"bbox must be 4 numbers, got {ann.bbox!r}"
        else:
            reason = f"{reasons[i]} (bbox {ann.bbox})"
        invalid.append(InvalidBox(f"{where}: annotations[{i}] (id {ann.id})", int(i), reason))
    del anns
    warn_skipped(invalid)

    keep = np.flatnonzero(~bad)
    keep = keep[np.argsort(image_index[keep], kind="stable")]
    kept_boxes = clip_boxes(boxes[keep], width_of[keep], height_of[keep])
    kept_labels = labels[keep].astype(np.int64)
    kept_crowd, kept_difficult = crowd[keep], difficult[keep]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(image_index[keep], minlength=len(image_ids)))])
    images = []
    for i, (image_id, width, height, file_name) in enumerate(zip(image_ids, widths, heights, files, strict=True)):
        a, b = bounds[i], bounds[i + 1]
        images.append(
            ImageBoxes(
                path=images_dir / file_name,
                width=width,
                height=height,
                boxes=kept_boxes[a:b],
                labels=kept_labels[a:b],
                image_id=image_id,
                iscrowd=kept_crowd[a:b],
                difficult=kept_difficult[a:b],
            )
        )
    return DetectionSet(class_names, images, category_ids, invalid, source=where)


def coco_splits(root: str | Path) -> dict[str, Path]:
    """``{split: json}`` for COCO's layout ``root/annotations/instances_<split>.json`` (or a single JSON)."""
    root = Path(root)
    if root.is_file():
        return {root.stem.split("_", 1)[-1]: root}
    return {p.stem.split("_", 1)[-1]: p for p in sorted((root / "annotations").glob("instances_*.json"))}


def write_coco(dataset: DetectionSet, json_path: str | Path, file_names: list[str] | None = None) -> None:
    """Write ``dataset`` as COCO instances JSON; ``file_names`` (default: each image's name) per image.

    Boxes are written as ``x, y, w, h`` in the shortest text that reads back to the same float32;
    category ids are ``dataset.category_ids``; image ids are kept when they are integers, else
    numbered from 1. Crowd flags go to ``iscrowd``; VOC's difficult flag to an extra ``difficult``
    key (COCO tools ignore it; ``read_coco`` reads it back). Segmentations are not written.
    """
    from amlvision.detection.files import number

    names = file_names or [image.path.name for image in dataset.images]
    ids = [image.image_id for image in dataset.images]
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids) or len(set(ids)) != len(ids):
        ids = list(range(1, len(dataset.images) + 1))
    images, annotations = [], []
    for image, image_id, name in zip(dataset.images, ids, names, strict=True):
        images.append({"id": image_id, "file_name": name, "width": image.width, "height": image.height})
        for box, label, crowd, difficult in zip(image.boxes, image.labels, image.iscrowd, image.difficult, strict=True):
            x, y = float(number(box[0])), float(number(box[1]))
            w, h = float(number(box[2] - box[0])), float(number(box[3] - box[1]))
            ann = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": dataset.category_ids[int(label)],
                "bbox": [x, y, w, h],
                "area": float(number(w * h)),
                "iscrowd": int(crowd),
            }
            if difficult:
                ann["difficult"] = 1
            annotations.append(ann)
    categories = [
        {"id": cid, "name": name, "supercategory": ""}
        for cid, name in zip(dataset.category_ids, dataset.class_names, strict=True)
    ]
    Path(json_path).parent.mkdir(parents=True, exist_ok=True)
    with open(json_path, "w", encoding="utf-8") as out:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, out)


def write_coco_folder(splits: Mapping[str, DetectionSet], out: str | Path, overwrite: bool = False) -> Path:
    """Write ``splits`` in COCO's layout (atomically): ``annotations/instances_<split>.json``, ``<split>/``."""
    from amlvision.detection.convert import common_classes
    from amlvision.detection.files import atomic_dir, place_image, unique_names

    common_classes(splits)
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for split, dataset in splits.items():
            names = unique_names([image.path for image in dataset.images])
            for image, name in zip(dataset.images, names, strict=True):
                place_image(image.path, tmp / split / name)
            write_coco(dataset, tmp / "annotations" / f"instances_{split}.json", names)
    return out
