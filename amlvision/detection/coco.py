"""Read a COCO instances JSON into a :class:`DetectionSet`.

COCO's category ids are not contiguous (1..90 with gaps); they are mapped to contiguous indexes in
id order and kept in ``category_ids``. Segmentations are ignored, crowd boxes are kept and flagged,
images without annotations stay (they are negatives for detection). Invalid boxes (zero or negative
size, outside the image, unknown category, unknown image) are skipped and listed in ``invalid``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from amlvision.detection.annotations import DetectionSet, ImageBoxes, InvalidBox

# A box may overhang its image by this many pixels (COCO's own boxes sometimes do by rounding).
EDGE_TOLERANCE = 1.0


class CocoFormatError(ValueError):
    """The JSON is not a COCO instances file; the message names the file and the field."""


def _require(raw: dict, key: str, where: str) -> list:
    value = raw.get(key)
    if not isinstance(value, list):
        raise CocoFormatError(f"{where}: field {key!r} must be a list, got {type(value).__name__}")
    return value


def read_coco(annotations: str | Path, images_dir: str | Path | None = None) -> DetectionSet:
    """Read ``annotations`` (COCO instances JSON); image files are looked up in ``images_dir``.

    Without ``images_dir`` the images are expected beside the JSON's parent folder under the JSON
    stem's split name (``annotations/instances_val2017.json`` -> ``val2017/``), COCO's own layout.
    """
    annotations = Path(annotations)
    where = str(annotations)
    try:
        raw = json.loads(annotations.read_bytes())
    except (OSError, json.JSONDecodeError) as exc:
        raise CocoFormatError(f"{where}: cannot read COCO JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise CocoFormatError(f"{where}: top level must be an object")
    if images_dir is None:
        split = annotations.stem.split("_", 1)[-1]
        images_dir = annotations.parent.parent / split
    images_dir = Path(images_dir)

    categories = sorted(_require(raw, "categories", where), key=lambda c: int(c["id"]))
    category_ids = [int(c["id"]) for c in categories]
    index_of_category = {cid: i for i, cid in enumerate(category_ids)}
    class_names = [str(c["name"]) for c in categories]

    records: dict[int, dict] = {}
    order: list[int] = []
    for i, image in enumerate(_require(raw, "images", where)):
        try:
            image_id = int(image["id"])
            records[image_id] = {"file": str(image["file_name"]), "w": int(image["width"]), "h": int(image["height"])}
        except (KeyError, TypeError, ValueError) as exc:
            raise CocoFormatError(f"{where}: images[{i}] lacks a valid id/file_name/width/height ({exc})") from exc
        records[image_id].update(boxes=[], labels=[], crowd=[])
        order.append(image_id)

    invalid: list[InvalidBox] = []
    for i, ann in enumerate(_require(raw, "annotations", where)):
        source = f"{where}: annotations[{i}] (id {ann.get('id')})"
        record = records.get(ann.get("image_id"))
        label = index_of_category.get(ann.get("category_id"))
        bbox = ann.get("bbox")
        reason = None
        if record is None:
            reason = f"unknown image_id {ann.get('image_id')!r}"
        elif label is None:
            reason = f"unknown category_id {ann.get('category_id')!r}"
        elif not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
            reason = f"bbox must be 4 numbers, got {bbox!r}"
        else:
            x, y, w, h = (float(v) for v in bbox)
            if not (w > 0 and h > 0):
                reason = f"zero or negative size {w}x{h}"
            elif (
                x < -EDGE_TOLERANCE
                or y < -EDGE_TOLERANCE
                or x + w > record["w"] + EDGE_TOLERANCE
                or y + h > record["h"] + EDGE_TOLERANCE
            ):
                reason = f"box {bbox} outside the {record['w']}x{record['h']} image"
        if reason is not None:
            invalid.append(InvalidBox(source, i, reason))
            continue
        record["boxes"].append([max(x, 0.0), max(y, 0.0), min(x + w, record["w"]), min(y + h, record["h"])])
        record["labels"].append(label)
        record["crowd"].append(bool(ann.get("iscrowd", 0)))
    for item in invalid:
        warnings.warn(f"skipped {item.source}: {item.reason}", stacklevel=2)

    images = [
        ImageBoxes(
            path=images_dir / records[i]["file"],
            width=records[i]["w"],
            height=records[i]["h"],
            boxes=np.asarray(records[i]["boxes"], np.float32).reshape(-1, 4),
            labels=np.asarray(records[i]["labels"], np.int64),
            image_id=i,
            iscrowd=np.asarray(records[i]["crowd"], bool),
        )
        for i in order
    ]
    return DetectionSet(class_names, images, category_ids, invalid, source=where)
