"""CNTK's ``crop`` transform (``cntk.io.transforms.crop``), rectangle logic as in CNTK's ImageTransformers.cpp.

Crop types: ``center``; ``randomside`` (side = ``side_ratio`` x shorter side, random position,
random horizontal flip); ``randomarea`` (area = ``area_ratio`` x image area, random position and
flip); ``multiview10`` (4 corners + centre, then the same 5 mirrored: 10 views per image, for
evaluation). ``crop_size`` (pixels, int or ``(width, height)``) fixes the size instead.
``aspect_ratio`` (0 < r <= 1, or a range) stretches the crop to ``sqrt(area*r) x sqrt(area/r)``
in a random orientation. ``jitter_type``: ``none`` uses the *minimum* of each ratio range (as CNTK
does), ``uniratio`` draws uniformly in ``[min, max)``.
"""

from __future__ import annotations

import math
import random

import torch

from amlvision.transforms.base import ImageTransform, ratio_range

CROP_TYPES = ("center", "randomside", "randomarea", "multiview10")
JITTER_TYPES = ("none", "uniratio")
_ATTEMPTS = 10  # CNTK tries 10 times to fit an aspect-ratio-jittered crop, then uses the whole image


def _check_ratio(lo: float, hi: float, name: str, *, allow_unset: bool) -> bool:
    """Validate a ratio range as CNTK does; return whether it is set (0, 0 means unset)."""
    if allow_unset and lo == 0.0 and hi == 0.0:
        return False
    if not (0 < lo <= 1.0 and 0 < hi <= 1.0) or lo > hi:
        raise ValueError(f"invalid {name} ({lo}, {hi}): values must be > 0 and <= 1 and min <= max")
    return True


class Crop(ImageTransform):
    def __init__(
        self,
        crop_type: str = "center",
        crop_size: int | tuple[int, int] = 0,
        side_ratio: float | tuple[float, float] = 0.0,
        area_ratio: float | tuple[float, float] = 0.0,
        aspect_ratio: float | tuple[float, float] = 1.0,
        jitter_type: str = "none",
        hflip: bool | None = None,
    ):
        crop_type = crop_type.lower()
        if crop_type == "random":  # CNTK's legacy name for randomside
            crop_type = "randomside"
        if crop_type not in CROP_TYPES:
            raise ValueError(f"crop_type must be one of {CROP_TYPES}, got {crop_type!r}")
        jitter_type = jitter_type.lower()
        if jitter_type not in JITTER_TYPES:
            raise ValueError(f"jitter_type must be one of {JITTER_TYPES}, got {jitter_type!r}")
        width, height = (crop_size, crop_size) if isinstance(crop_size, int) else (int(v) for v in crop_size)
        if width < 0 or height < 0:
            raise ValueError(f"crop_size must be >= 0, got {crop_size!r}")
        self.crop_type = crop_type
        self.crop_size = (width, height)
        self.side_ratio = ratio_range(side_ratio, "side_ratio")
        self.area_ratio = ratio_range(area_ratio, "area_ratio")
        self.aspect_ratio = ratio_range(aspect_ratio, "aspect_ratio")
        self.jitter_type = jitter_type
        self._use_side = _check_ratio(*self.side_ratio, "side_ratio", allow_unset=True)
        self._use_area = _check_ratio(*self.area_ratio, "area_ratio", allow_unset=True)
        _check_ratio(*self.aspect_ratio, "aspect_ratio", allow_unset=False)
        if self._use_side and self._use_area:
            raise ValueError("side_ratio and area_ratio cannot be specified simultaneously")
        fixed = width > 0 and height > 0
        if crop_type == "randomside" and not (self._use_side or fixed):
            raise ValueError("crop_type 'randomside' needs side_ratio (or crop_size)")
        if crop_type == "randomarea" and not (self._use_area or fixed):
            raise ValueError("crop_type 'randomarea' needs area_ratio (or crop_size)")
        # CNTK: random crops mirror at random unless told otherwise; multiview10 mirrors views 5-9 only.
        default_flip = crop_type in ("randomside", "randomarea")
        self.hflip = False if crop_type == "multiview10" else (default_flip if hflip is None else bool(hflip))
        self.views = 10 if crop_type == "multiview10" else 1

    # --------------------------------------------------------------- geometry (CNTK's GetCropRect*)
    def _jitter(self, lo: float, hi: float, rng: random.Random) -> float:
        if self.jitter_type == "none" or lo == hi:
            return lo
        return rng.uniform(lo, hi)

    def crop_extent(self, rows: int, cols: int, rng: random.Random) -> tuple[int, int]:
        """Crop ``(height, width)`` for an image of ``rows x cols`` (CNTK ``GetCropRectCenter``)."""
        width, height = self.crop_size
        if width > 0 and height > 0:
            return min(rows, height), min(cols, width)
        size_x, size_y = cols, rows
        for _ in range(_ATTEMPTS):
            if self._use_side:
                side = self._jitter(*self.side_ratio, rng)
                size_x = size_y = int(math.floor(min(rows, cols) * side + 0.5))
            elif self._use_area:
                area_ratio = self._jitter(*self.area_ratio, rng)
                size_x = size_y = int(math.floor(math.sqrt(rows * cols * area_ratio) + 0.5))
            aspect = self._jitter(*self.aspect_ratio, rng)
            if aspect != 1.0:
                area = size_x * size_y
                wide, narrow = int(math.sqrt(area * aspect)), int(math.sqrt(area / aspect))
                size_x, size_y = (wide, narrow) if rng.random() < 0.5 else (narrow, wide)
            if size_x <= cols and size_y <= rows:
                return max(size_y, 1), max(size_x, 1)
        return rows, cols  # CNTK falls back to the whole image

    def crop_rect(self, rows: int, cols: int, rng: random.Random, view: int = 0) -> tuple[int, int, int, int]:
        """``(top, left, height, width)`` of the crop."""
        height, width = self.crop_extent(rows, cols, rng)
        if self.crop_type in ("randomside", "randomarea"):
            return rng.randint(0, rows - height), rng.randint(0, cols - width), height, width
        if self.crop_type == "multiview10":
            corner = view % 5
            top = {0: 0, 1: 0, 2: rows - height, 3: rows - height, 4: (rows - height) // 2}[corner]
            left = {0: 0, 1: cols - width, 2: 0, 3: cols - width, 4: (cols - width) // 2}[corner]
            return top, left, height, width
        return (rows - height) // 2, (cols - width) // 2, height, width

    def __call__(self, image: torch.Tensor, rng: random.Random, view: int = 0) -> torch.Tensor:
        top, left, height, width = self.crop_rect(image.shape[-2], image.shape[-1], rng, view)
        image = image[..., top : top + height, left : left + width]
        if (self.hflip and rng.random() < 0.5) or (self.crop_type == "multiview10" and view % 10 >= 5):
            image = image.flip(-1)
        return image

    def output_size(self, size: tuple[int, int] | None) -> tuple[int, int] | None:
        width, height = self.crop_size
        if size is not None and width > 0 and height > 0:
            return min(size[0], height), min(size[1], width)
        if size is not None and not self._use_side and not self._use_area and self.aspect_ratio == (1.0, 1.0):
            return size
        return None


def crop(
    crop_type: str = "center",
    crop_size: int | tuple[int, int] = 0,
    side_ratio: float | tuple[float, float] = 0.0,
    area_ratio: float | tuple[float, float] = 0.0,
    aspect_ratio: float | tuple[float, float] = 1.0,
    jitter_type: str = "none",
    hflip: bool | None = None,
) -> Crop:
    """``cntk.io.transforms.crop`` with the same parameters (``hflip`` is CNTK's BrainScript option)."""
    return Crop(crop_type, crop_size, side_ratio, area_ratio, aspect_ratio, jitter_type, hflip)
