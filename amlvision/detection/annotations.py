"""The in-memory form of a box-annotated data set, whatever file format it came from.

Every detection reader (COCO JSON, Pascal VOC XML, CNTK's Faster R-CNN files, YOLO txt) returns a
:class:`DetectionSet`; converters, training, COCOeval and the COCO "why" report take one. Boxes are
absolute pixel ``x1, y1, x2, y2`` (x2/y2 exclusive edges, COCO's ``x + w``) in the original image,
labels are contiguous indexes into ``class_names``; each format's own ids are kept only in
``category_ids`` so that a round trip can write them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class ImageBoxes:
    """One image and its boxes; arrays are parallel, one row per box."""

    path: Path
    width: int
    height: int
    boxes: np.ndarray  # float32 [n, 4] x1, y1, x2, y2 in pixels
    labels: np.ndarray  # int64 [n], index into DetectionSet.class_names
    image_id: int | str = 0
    iscrowd: np.ndarray | None = None  # bool [n]; COCO crowd regions (ignored by COCOeval)
    difficult: np.ndarray | None = None  # bool [n]; Pascal VOC "difficult"

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        n = len(self.labels)
        if len(self.boxes) != n:
            raise ValueError(f"{self.path}: {len(self.boxes)} boxes but {n} labels")
        self.iscrowd = np.zeros(n, bool) if self.iscrowd is None else np.asarray(self.iscrowd, bool)
        self.difficult = np.zeros(n, bool) if self.difficult is None else np.asarray(self.difficult, bool)

    @property
    def areas(self) -> np.ndarray:
        """Box areas in pixels (width x height of each box)."""
        return (self.boxes[:, 2] - self.boxes[:, 0]) * (self.boxes[:, 3] - self.boxes[:, 1])


@dataclass(frozen=True)
class InvalidBox:
    """A box a reader skipped, with where it was and why (reported by inspect, warned by readers)."""

    source: str  # file (and line/index) that held it
    index: int  # the box's index within its image or file
    reason: str


@dataclass
class DetectionSet:
    """A box-annotated data set: class names, images with boxes, and what was skipped on reading."""

    class_names: list[str]
    images: list[ImageBoxes]
    category_ids: list[int] = field(default_factory=list)  # the format's id per class index
    invalid: list[InvalidBox] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        if not self.category_ids:
            self.category_ids = list(range(len(self.class_names)))
        if len(self.category_ids) != len(self.class_names):
            raise ValueError(
                f"{self.source}: {len(self.category_ids)} category ids for {len(self.class_names)} classes"
            )

    @property
    def num_boxes(self) -> int:
        return sum(len(image.labels) for image in self.images)
