"""CNTK's ``color`` transform: random brightness, contrast and saturation, exactly as ImageTransformers.cpp.

For an image ``X`` (converted to float32, 0-255 units):

* brightness: ``beta = U(-brightness_radius, brightness_radius) * mean(X)`` (mean over all pixels
  and channels — an offset proportional to the image's own brightness);
* contrast: ``alpha = 1 + U(-contrast_radius, contrast_radius)``;
* ``X = clip(alpha * X + beta, 0, 255)`` (only when either radius is non-zero);
* saturation (3-channel images): ``ratio = 1 + U(-saturation_radius, saturation_radius)`` and, in
  HSV, ``S = min(S * ratio, 1)`` with hue and value kept. That is computed here without the HSV
  round trip: each channel becomes ``V - (V - x) * min(ratio, V / (V - min))`` where ``V`` and
  ``min`` are the pixel's largest and smallest channel — the same numbers up to float rounding.

The draws happen in that order from the sample's generator. torchvision's ``adjust_brightness`` /
``adjust_contrast`` / ``adjust_saturation`` define these operations differently (multiplicative
brightness, contrast around the gray mean, saturation as a blend with luma), so they are not used.
"""

from __future__ import annotations

import random

import torch

from amlvision.transforms.base import BatchTransform


def _check_radius(value: float, name: str) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be >= 0.0 and <= 1.0, got {value}")
    return value


def adjust_saturation_hsv(images: torch.Tensor, ratio: torch.Tensor | float) -> torch.Tensor:
    """Scale HSV saturation of float RGB images (``... x 3 x H x W``) by ``ratio`` (capped at S = 1).

    ``ratio`` is a number or one value per image broadcastable to ``N x 1 x 1 x 1``.
    """
    top = images.amax(dim=-3, keepdim=True)
    spread = top - images.amin(dim=-3, keepdim=True)
    # Effective factor on (V - x): ratio, but never beyond S = 1 (i.e. the smallest channel reaching 0).
    limit = torch.where(spread > 0, top / spread.clamp_min(1e-12), torch.full_like(spread, float("inf")))
    factor = torch.minimum(limit, torch.as_tensor(ratio, dtype=images.dtype))
    return (top - (top - images) * factor).clamp_(min=0.0)  # float rounding may dip just below 0


class Color(BatchTransform):
    def __init__(self, brightness_radius: float = 0.0, contrast_radius: float = 0.0, saturation_radius: float = 0.0):
        self.brightness_radius = _check_radius(brightness_radius, "brightness_radius")
        self.contrast_radius = _check_radius(contrast_radius, "contrast_radius")
        self.saturation_radius = _check_radius(saturation_radius, "saturation_radius")

    def draw(self, rng: random.Random) -> tuple[float, float, float]:
        """``(brightness factor u_b, alpha, saturation ratio)``; ``beta = u_b * mean(X)``."""

        def draw_in(radius: float) -> float:
            return rng.uniform(-radius, radius) if radius > 0 else 0.0

        u_b = draw_in(self.brightness_radius)
        alpha = 1.0 + draw_in(self.contrast_radius)
        ratio = 1.0 + draw_in(self.saturation_radius)
        return u_b, alpha, ratio

    def apply_batch(self, images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        images = images.to(torch.float32)
        n = images.shape[0]
        u_b, alpha, ratio = (params[:, k].view(n, 1, 1, 1) for k in range(3))
        if self.brightness_radius > 0 or self.contrast_radius > 0:
            beta = torch.zeros_like(u_b)
            if self.brightness_radius > 0:
                beta = u_b * images.mean(dim=(1, 2, 3), dtype=torch.float64).view(n, 1, 1, 1)
            images = (images * alpha.float() + beta.float()).clamp_(0.0, 255.0)
        if self.saturation_radius > 0 and images.shape[1] == 3:
            images = adjust_saturation_hsv(images, ratio.float())
        return images

    def apply(self, image: torch.Tensor, u_b: float, alpha: float, ratio: float) -> torch.Tensor:
        """Apply given draws to one ``C x H x W`` image (what tests compare against hand-computed pixels)."""
        params = torch.tensor([[u_b, alpha, ratio]], dtype=torch.float64)
        return self.apply_batch(image[None].to(torch.float32), params)[0]

    def __call__(self, image: torch.Tensor, rng: random.Random, view: int = 0) -> torch.Tensor:
        if self.brightness_radius == 0 and self.contrast_radius == 0 and self.saturation_radius == 0:
            return image
        return super().__call__(image, rng, view)


def color(brightness_radius: float = 0.0, contrast_radius: float = 0.0, saturation_radius: float = 0.0) -> Color:
    """``cntk.io.transforms.color`` with the same parameters."""
    return Color(brightness_radius, contrast_radius, saturation_radius)
