"""A list of CNTK transforms applied in order to one decoded image, plus config parsing.

``build_transforms`` accepts the transform list the way users write it in a config file::

    [{"type": "crop", "crop_type": "randomarea", "area_ratio": [0.08, 1.0], "jitter_type": "uniratio"},
     {"type": "scale", "width": 32, "height": 32, "channels": 3},
     {"type": "color", "brightness_radius": 0.2, "contrast_radius": 0.2, "saturation_radius": 0.2}]

or as a mapping ``{"crop": {...}, "scale": {...}}`` (applied in the mapping's order), or as
transform objects from ``amlvision.transforms``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from amlvision.transforms.base import BatchTransform, ImageTransform
from amlvision.transforms.color import Color
from amlvision.transforms.crop import Crop
from amlvision.transforms.mean import Mean
from amlvision.transforms.scale import Scale

TRANSFORM_TYPES: dict[str, type[ImageTransform]] = {"crop": Crop, "scale": Scale, "mean": Mean, "color": Color}

TransformsConfig = Sequence[Mapping[str, Any] | ImageTransform] | Mapping[str, Mapping[str, Any]] | None


def build_transforms(config: TransformsConfig) -> list[ImageTransform]:
    """Turn a transforms config (see module docstring) into transform objects."""
    if config is None:
        return []
    if isinstance(config, Mapping):
        items: Iterable[Any] = [{"type": name, **(params or {})} for name, params in config.items()]
    else:
        items = config
    built: list[ImageTransform] = []
    for position, item in enumerate(items):
        if isinstance(item, ImageTransform):
            built.append(item)
            continue
        if not isinstance(item, Mapping) or "type" not in item:
            raise ValueError(f"transform #{position}: expected a mapping with a 'type' key, got {item!r}")
        params = dict(item)
        kind = str(params.pop("type")).lower()
        if kind not in TRANSFORM_TYPES:
            raise ValueError(f"transform #{position}: unknown type {kind!r}; known: {sorted(TRANSFORM_TYPES)}")
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
        try:
            built.append(TRANSFORM_TYPES[kind](**params))
        except TypeError as exc:
            raise ValueError(f"transform #{position} ({kind}): {exc}") from None
    return built


class TransformPipeline:
    """Apply transforms in order to ``H x W x C`` uint8 images; output float32 ``C x H x W``."""

    def __init__(self, transforms: TransformsConfig):
        self.transforms = build_transforms(transforms)
        multiview = [t for t in self.transforms if t.views > 1]
        if len(multiview) > 1:
            raise ValueError("only one multiview10 crop may appear in a transform list")
        self.views = multiview[0].views if multiview else 1
        channel_counts = {t.channels for t in self.transforms if t.channels is not None}
        if len(channel_counts) > 1:
            raise ValueError(f"scale transforms disagree on channels: {sorted(channel_counts)}")
        self.channels: int | None = channel_counts.pop() if channel_counts else None

        # The trailing run of batch transforms (color, mean) is applied per batch by ImageSource.
        split = len(self.transforms)
        while split > 0 and isinstance(self.transforms[split - 1], BatchTransform):
            split -= 1
        self.per_image: list[ImageTransform] = self.transforms[:split]
        self.batch_tail: list[BatchTransform] = self.transforms[split:]  # type: ignore[assignment]

    def output_size(self, input_size: tuple[int, int] | None) -> tuple[int, int] | None:
        """``(H, W)`` of every output for inputs of ``input_size`` (``None``: not fixed)."""
        size = input_size
        for transform in self.transforms:
            size = transform.output_size(size)
        return size

    def __call__(self, image: np.ndarray, rng: random.Random, view: int = 0) -> torch.Tensor:
        tensor = torch.from_numpy(np.require(image, requirements="W")).permute(2, 0, 1)
        for transform in self.transforms:
            tensor = transform(tensor, rng, view)
        return tensor.to(torch.float32).contiguous()

    def prepare(self, image: np.ndarray, rng: random.Random, view: int = 0) -> tuple[torch.Tensor, list[tuple]]:
        """Run the per-image transforms and draw the batch tail's parameters (in list order)."""
        tensor = torch.from_numpy(np.require(image, requirements="W")).permute(2, 0, 1)
        for transform in self.per_image:
            tensor = transform(tensor, rng, view)
        return tensor, [transform.draw(rng) for transform in self.batch_tail]

    def finish_batch(self, images: torch.Tensor, draws: list[list[tuple]]) -> torch.Tensor:
        """Apply the batch tail to stacked ``prepare`` outputs; ``draws[i]`` is sample i's draws."""
        images = images.to(torch.float32)
        for k, transform in enumerate(self.batch_tail):
            params = torch.tensor([d[k] for d in draws], dtype=torch.float64).view(len(draws), -1)
            images = transform.apply_batch(images, params)
        return images

    def describe(self) -> list[dict]:
        return [t.describe() for t in self.transforms]
