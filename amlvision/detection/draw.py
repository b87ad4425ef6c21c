"""Draw detections (boxes, labels, scores) onto an image with Pillow: ``amlvision predict --draw``.

Pillow only (no matplotlib, no torch), so it runs wherever ``amlvision predict`` runs. Each class
gets a fixed colour (from its name), so the same class looks the same in every picture.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Tableau's 10 colours: distinct, and readable on photos.
PALETTE = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)  # fmt: skip


class Drawable(Protocol):
    """What is drawn of a detection (``amlvision.tasks.detection.Detection`` is one; this layer does not import it)."""

    label: str
    score: float
    box: tuple[float, float, float, float]


def colour_of(label: str) -> tuple[int, int, int]:
    """A fixed colour per class name (stable across runs and processes, unlike ``hash``)."""
    return PALETTE[hashlib.sha1(label.encode()).digest()[0] % len(PALETTE)]


def draw_detections(pixels: np.ndarray, detections: Sequence[Drawable]) -> Image.Image:
    """``uint8 H x W x 3`` pixels with each detection's box and a ``label score`` tag above it."""
    image = Image.fromarray(pixels).convert("RGB")
    draw = ImageDraw.Draw(image)
    width = max(2, round(max(image.size) / 300))  # lines stay visible on large photos
    font = ImageFont.load_default(size=max(11, round(max(image.size) / 45)))
    for found in sorted(detections, key=lambda d: d.score):  # the best box drawn last, on top
        colour = colour_of(found.label)
        x1, y1, x2, y2 = found.box
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=width)
        text = f"{found.label} {found.score:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tag_height = bottom - top + 4
        y = y1 - tag_height if y1 >= tag_height else y1  # inside the box when there is no room above
        draw.rectangle((x1, y, x1 + right - left + 6, y + tag_height), fill=colour)
        draw.text((x1 + 3, y + 2 - top), text, fill=(255, 255, 255), font=font)
    return image


def save_drawing(pixels: np.ndarray, detections: Sequence[Drawable], path: str | Path) -> Path:
    """Draw and save (format from the suffix, e.g. ``.png``, ``.jpg``); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    draw_detections(pixels, detections).save(path)
    return path
