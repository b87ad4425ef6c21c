"""CNTK's ``scale`` transform (``cntk.io.transforms.scale``): resize to ``width x height``.

``scale_mode``: ``fill`` warps to the target size; ``crop`` resizes the shorter side to the target
and centre-crops the overlap; ``pad`` resizes the longer side to the target, centres the image and
pads the rest with ``pad_value`` (``-1``: replicate the border). ``channels`` is the channel count
the images are decoded with (1 gray or 3 RGB), as in CNTK's ImageDeserializer.

Execution: torchvision ``transforms.v2.functional.resize`` on the tensor without antialiasing
(the same sampling geometry as OpenCV's ``cv::resize``, which CNTK calls) for ``nearest``,
``linear`` and ``cubic``; Pillow for ``lanczos`` (torch has no Lanczos kernel). See docs/sources.md
for where the pixels differ from CNTK's.
"""

from __future__ import annotations

import math
import random

import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

from amlvision.transforms.base import ImageTransform

INTERPOLATIONS = {
    "nearest": InterpolationMode.NEAREST,
    "linear": InterpolationMode.BILINEAR,
    "cubic": InterpolationMode.BICUBIC,
    "lanczos": InterpolationMode.LANCZOS,
}
SCALE_MODES = ("fill", "crop", "pad")


def _round_half_away(value: float) -> int:
    """C's ``round`` (CNTK uses it for target sizes); Python's ``round`` would round half to even."""
    return int(math.floor(value + 0.5))


def resize(image: torch.Tensor, height: int, width: int, interpolation: str) -> torch.Tensor:
    """Resize a ``C x H x W`` tensor (uint8 or float) to ``height x width``."""
    if tuple(image.shape[-2:]) == (height, width):
        return image
    mode = INTERPOLATIONS[interpolation]
    if mode is InterpolationMode.LANCZOS:
        if image.dtype != torch.uint8:
            image = image.round().clamp(0, 255).to(torch.uint8)
        return TF.pil_to_tensor(TF.resize(TF.to_pil_image(image), [height, width], interpolation=mode))
    return TF.resize(image, [height, width], interpolation=mode, antialias=False)


class Scale(ImageTransform):
    def __init__(
        self,
        width: int,
        height: int,
        channels: int = 3,
        interpolations: str = "linear",
        scale_mode: str = "fill",
        pad_value: int = -1,
    ):
        if int(width) <= 0 or int(height) <= 0:
            raise ValueError(f"scale width and height must be positive, got {width} x {height}")
        if channels not in (1, 3):
            raise ValueError(f"scale channels must be 1 or 3, got {channels}")
        interpolation = str(interpolations).lower()
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolations must be one of {sorted(INTERPOLATIONS)}, got {interpolations!r}")
        if scale_mode not in SCALE_MODES:
            raise ValueError(f"scale_mode must be one of {SCALE_MODES} (lower case), got {scale_mode!r}")
        if pad_value != -1 and pad_value < 0:
            raise ValueError(f"pad_value must be -1 (replicate border) or >= 0, got {pad_value}")
        self.width, self.height, self.channels = int(width), int(height), int(channels)
        self.interpolations = interpolation
        self.scale_mode = scale_mode
        self.pad_value = pad_value

    def target_size(self, rows: int, cols: int) -> tuple[int, int]:
        """``(height, width)`` the image is resized to before cropping or padding (CNTK's rule)."""
        if self.scale_mode == "fill":
            return self.height, self.width
        scale_width = cols < rows if self.scale_mode == "crop" else cols > rows
        if scale_width:
            size = _round_half_away(rows * self.width / cols), self.width
        else:
            size = self.height, _round_half_away(cols * self.height / rows)
        # CNTK assumes the other side then covers (crop) / fits (pad) the target, which holds for
        # square targets; for other targets use the covering / fitting scale instead of failing.
        covers = size[0] >= self.height and size[1] >= self.width
        fits = size[0] <= self.height and size[1] <= self.width
        if self.scale_mode == "crop" and not covers:
            factor = max(self.height / rows, self.width / cols)
            size = (
                max(_round_half_away(rows * factor), self.height),
                max(_round_half_away(cols * factor), self.width),
            )
        elif self.scale_mode == "pad" and not fits:
            factor = min(self.height / rows, self.width / cols)
            size = (
                min(max(_round_half_away(rows * factor), 1), self.height),
                min(max(_round_half_away(cols * factor), 1), self.width),
            )
        return size

    def __call__(self, image: torch.Tensor, rng: random.Random, view: int = 0) -> torch.Tensor:
        rows, cols = image.shape[-2:]
        height, width = self.target_size(rows, cols)
        image = resize(image, height, width, self.interpolations)
        if self.scale_mode == "crop":
            top, left = (height - self.height) // 2, (width - self.width) // 2
            return image[..., top : top + self.height, left : left + self.width]
        if self.scale_mode == "pad":
            top, left = (self.height - height) // 2, (self.width - width) // 2
            bottom, right = self.height - height - top, self.width - width - left
            if top or bottom or left or right:
                if self.pad_value == -1:
                    return TF.pad(image, [left, top, right, bottom], padding_mode="edge")
                return TF.pad(image, [left, top, right, bottom], fill=self.pad_value, padding_mode="constant")
        return image

    def output_size(self, size: tuple[int, int] | None) -> tuple[int, int] | None:
        return self.height, self.width


def scale(
    width: int,
    height: int,
    channels: int = 3,
    interpolations: str = "linear",
    scale_mode: str = "fill",
    pad_value: int = -1,
) -> Scale:
    """``cntk.io.transforms.scale`` with the same parameters."""
    return Scale(width, height, channels, interpolations, scale_mode, pad_value)
