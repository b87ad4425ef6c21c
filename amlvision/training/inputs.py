"""What the network's input is: per-channel normalisation from the training data, and preprocess.json.

The statistics pass (:func:`scan_training_images`) and the record a server needs to rebuild the same
input (:func:`model_preprocess`) live together, so the numbers the network trained with are the
numbers ``preprocess.json`` carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from amlvision.model_dir import CLASSIFICATION, Preprocess, resize_of_interpolation
from amlvision.training.config import TrainConfig


@dataclass
class Normalizer:
    """``(pixel - mean) / std`` per channel in 0-255 units; the same numbers go into preprocess.json."""

    mean: list[float]
    std: list[float]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std


def scan_training_images(
    source: Any, mode: str, sample_size: int = 5000, max_images: int = 50_000
) -> tuple[Normalizer, torch.Tensor]:
    """One pass over the un-augmented training split: per-channel mean/std and an evenly spaced image sample.

    ``mode``: 'data' (mean and std of the data), 'cntk' (the mean, and 256 as CNTK's ``x / 256``) or
    'none'. The sample (0-255 pixels) initialises the fast model's whitening layer.
    """
    total = min(len(source), max_images)
    stride = max(1, total // sample_size)
    sums = sq_sums = None
    count, seen, picked = 0, 0, []
    for x, _ in source.iter_epoch(0, 500):
        x = x.to("cpu", torch.float64)
        if seen >= total:
            break
        x = x[: total - seen]
        sums = x.sum(dim=(0, 2, 3)) if sums is None else sums + x.sum(dim=(0, 2, 3))
        sq_sums = (x * x).sum(dim=(0, 2, 3)) if sq_sums is None else sq_sums + (x * x).sum(dim=(0, 2, 3))
        count += x.shape[0] * x.shape[2] * x.shape[3]
        offsets = torch.arange(seen, seen + len(x))
        picked.append(x[offsets % stride == 0].float())
        seen += len(x)
    if not count:
        raise ValueError("the training split is empty")
    mean = sums / count
    std = (sq_sums / count - mean * mean).clamp_min(0).sqrt()
    channels = len(mean)
    if mode == "none":
        normalizer = Normalizer([0.0] * channels, [1.0] * channels)
    elif mode == "cntk":
        normalizer = Normalizer([round(float(v), 4) for v in mean], [256.0] * channels)
    else:
        normalizer = Normalizer([round(float(v), 4) for v in mean], [round(max(float(v), 1e-3), 4) for v in std])
    return normalizer, torch.cat(picked)[:sample_size]


def resize_used(cfg: TrainConfig) -> str:
    """The interpolation that brought a whole decoded image to the model's size in this run.

    The image reader's ``scale`` transform (always on for it), and the ``scale`` after a ``crop``,
    use ``--interpolations``; so does a CTF run with ``--scale``. Packing (the packed reader, also
    with ``--scale``) resizes with Pillow's bilinear filter (``amlvision.data.decoding.resize``), and
    CTF data without ``--scale`` is stored at the model's size already.
    """
    scaled_by_transform = cfg.reader == "image" or cfg.crop_type != "none" or (cfg.reader == "ctf" and cfg.scale)
    return resize_of_interpolation(cfg.interpolations) if scaled_by_transform else "bilinear"


def model_preprocess(
    cfg: TrainConfig, image_shape: tuple[int, int, int], normalizer: Normalizer, task: str = CLASSIFICATION
) -> Preprocess:
    """preprocess.json of this run: its input size, normalisation, real interpolation and task."""
    channels, height, width = image_shape
    return Preprocess(
        task=task,
        height=height,
        width=width,
        channels=channels,
        resize=resize_used(cfg),
        mean=tuple(normalizer.mean),
        std=tuple(normalizer.std),
    )
