"""What every CNTK image transform implements, and the random-number source they share.

An image travels through the transforms as a ``torch`` tensor ``C x H x W`` (uint8 until a
transform needs floating point — ``color`` and ``mean`` — then float32, as in CNTK where those
transforms convert the OpenCV matrix to float). Each image gets its own ``random.Random`` seeded
from the source's per-sample key, and transforms draw from it in list order, so a sample's
augmentation is reproducible whatever the batch size or worker count.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod

import torch


class ImageTransform(ABC):
    """One CNTK transform (``crop``, ``scale``, ``mean``, ``color``)."""

    #: How many samples (views) each image becomes: 10 for ``multiview10`` crops, else 1.
    views: int = 1
    #: Channel count the images must be decoded with (``scale`` fixes it), ``None`` if indifferent.
    channels: int | None = None

    @abstractmethod
    def __call__(self, image: torch.Tensor, rng: random.Random, view: int = 0) -> torch.Tensor:
        """Transform one ``C x H x W`` image; ``view`` is the multiview index (0 when not used)."""

    def output_size(self, size: tuple[int, int] | None) -> tuple[int, int] | None:
        """``(H, W)`` after this transform for an input of ``size`` (``None``: varies per image)."""
        return size

    def describe(self) -> dict:
        """The CNTK parameters, for logs and the model directory."""
        return {"type": type(self).__name__.lower(), **{k: v for k, v in vars(self).items() if not k.startswith("_")}}


def ratio_range(value: float | tuple[float, float] | list[float], name: str) -> tuple[float, float]:
    """CNTK ratio parameters take one value or ``(min, max)``; one value means min = max."""
    if isinstance(value, int | float):
        return float(value), float(value)
    values = [float(v) for v in value]
    if len(values) != 2:
        raise ValueError(f"{name} must be a number or a (min, max) pair, got {value!r}")
    return values[0], values[1]


class BatchTransform(ImageTransform):
    """A transform whose pixel work can run on a whole batch once each sample's draws are known.

    ``color`` and ``mean`` are of this kind: ``ImageSource`` runs the per-image transforms, collects
    ``draw(rng)`` per sample (in list order, so results equal the per-image path), stacks the
    images and calls ``apply_batch`` once — much cheaper than per-image tensor calls.
    """

    def draw(self, rng: random.Random) -> tuple[float, ...]:
        """This sample's random parameters (empty for deterministic transforms)."""
        return ()

    @abstractmethod
    def apply_batch(self, images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Transform float ``N x C x H x W`` images with per-sample ``params`` (``N x k`` float64)."""

    def __call__(self, image: torch.Tensor, rng: random.Random, view: int = 0) -> torch.Tensor:
        params = torch.tensor([self.draw(rng)], dtype=torch.float64).view(1, -1)
        return self.apply_batch(image.to(torch.float32)[None], params)[0]
