"""Box checks shared by every detection reader, and the warnings for what they skip.

One rule for all formats: a box is invalid when its size is zero or negative, when it lies outside
its image by more than ``EDGE_TOLERANCE`` pixels, or when its class is unknown. Boxes overhanging by
less than the tolerance (rounding in the source tool) are clipped to the image. Invalid boxes are
skipped, listed in ``DetectionSet.invalid`` and warned about; a reader never crashes on one.
"""

from __future__ import annotations

import warnings

import numpy as np

from amlvision.detection.annotations import InvalidBox

# A box may overhang its image by this many pixels (COCO's and VOC tools' boxes sometimes do by rounding).
EDGE_TOLERANCE = 1.0
# At most this many skipped boxes are warned one by one; the rest are summarised in one warning.
MAX_WARNINGS = 20
# Index of an InvalidBox that stands for a whole skipped file or line (not one box of it).
WHOLE_FILE = -1


def box_problems(boxes: np.ndarray, width: np.ndarray | float, height: np.ndarray | float) -> np.ndarray:
    """Why each ``x1, y1, x2, y2`` box is invalid ("" when it is fine); vectorised over rows.

    ``width`` and ``height`` are the image size, one value or one per box.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = boxes.T
    width = np.broadcast_to(np.asarray(width, np.float64), x1.shape)
    height = np.broadcast_to(np.asarray(height, np.float64), x1.shape)
    finite = np.isfinite(boxes).all(axis=1)
    empty = finite & ~((x2 > x1) & (y2 > y1))
    outside = (
        finite
        & ~empty
        & (
            (x1 < -EDGE_TOLERANCE)
            | (y1 < -EDGE_TOLERANCE)
            | (x2 > width + EDGE_TOLERANCE)
            | (y2 > height + EDGE_TOLERANCE)
        )
    )
    reasons = np.full(len(boxes), "", dtype=object)
    reasons[~finite] = "box coordinates are not finite numbers"
    for i in np.flatnonzero(empty):
        reasons[i] = f"zero or negative size {x2[i] - x1[i]:g}x{y2[i] - y1[i]:g}"
    for i in np.flatnonzero(outside):
        reasons[i] = f"box ({x1[i]:g}, {y1[i]:g}, {x2[i]:g}, {y2[i]:g}) outside the {width[i]:g}x{height[i]:g} image"
    return reasons


def clip_boxes(boxes: np.ndarray, width: np.ndarray | float, height: np.ndarray | float) -> np.ndarray:
    """Clip valid boxes (overhang within the tolerance) to their image; returns float32 [n, 4]."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    width = np.broadcast_to(np.asarray(width, np.float64), boxes[:, 0].shape)
    height = np.broadcast_to(np.asarray(height, np.float64), boxes[:, 0].shape)
    boxes[:, 0:2] = np.maximum(boxes[:, 0:2], 0.0)
    boxes[:, 2] = np.minimum(boxes[:, 2], width)
    boxes[:, 3] = np.minimum(boxes[:, 3], height)
    return boxes.astype(np.float32)


def warn_skipped(invalid: list[InvalidBox], stacklevel: int = 3) -> None:
    """One warning per skipped box or file (the first ``MAX_WARNINGS``), then one summary warning."""
    for item in invalid[:MAX_WARNINGS]:
        warnings.warn(f"skipped {item.source}: {item.reason}", stacklevel=stacklevel)
    if len(invalid) > MAX_WARNINGS:
        warnings.warn(
            f"skipped {len(invalid) - MAX_WARNINGS} more boxes or files (DetectionSet.invalid lists all "
            f"{len(invalid)}; `amlvision inspect` prints them)",
            stacklevel=stacklevel,
        )
