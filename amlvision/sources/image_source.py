"""``ImageSource``: CNTK's ImageDeserializer — image files from a map file (or any collection), CNTK transforms.

Each image is decoded with ``amlvision.data.images.load_image`` (Pillow; RGB or gray by the
``scale`` transform's ``channels``), then the transforms run in list order
(``amlvision.transforms``). With a ``multiview10`` crop every image becomes 10 consecutive samples
(views 0-9), as CNTK's deserializer makes 10 copies of each sequence.

Decoding and transforms run in ``num_workers`` worker processes (``torch.utils.data.DataLoader``
over whole batch plans, so the schedule stays in ``MinibatchSource``); each sample's randomness
comes from its own key, so results are identical for any worker count or batch size.
"""

from __future__ import annotations

import os
import pickle
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from amlvision.data.collection import LabeledImages
from amlvision.sources.base import BatchPlan, MinibatchSource
from amlvision.transforms.pipeline import TransformPipeline, TransformsConfig


def open_images(
    data: str | Path | LabeledImages, split: str | None = None, class_names: list[str] | None = None
) -> LabeledImages:
    """A ``LabeledImages``: given, or one split of the path resolved by ``amlvision.data.resolve``."""
    if isinstance(data, LabeledImages):
        return data
    from amlvision.data.resolve import resolve

    dataset = resolve(data, class_names=class_names)
    if split is None:
        splits = dataset.collection()
        if len(splits) != 1:
            raise ValueError(f"{data}: holds splits {sorted(splits)}; say which one to read")
        return next(iter(splits.values()))
    return dataset.open(split)


class _Plans(Dataset):
    """Batch plans as a map-style dataset, so DataLoader workers decode whole batches."""

    def __init__(self, source: ImageSource, plans: list[BatchPlan]):
        self.source, self.plans = source, plans

    def __len__(self) -> int:
        return len(self.plans)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor] | _Failure:
        try:
            return self.source._load_batch(self.plans[i])
        except Exception as exc:  # handed to the main process as data, see _Failure
            return _Failure.of(exc)


@dataclass
class _Failure:
    """An error raised in a worker, returned as a value.

    Letting DataLoader re-raise it leaves the worker pool in a state whose clean-up blocks for
    5 s per worker; returning it keeps the pool healthy, and the main process raises it itself.
    """

    error: BaseException

    @classmethod
    def of(cls, exc: Exception) -> _Failure:
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        return cls(exc)


class ImageSource(MinibatchSource):
    """Minibatches of decoded, transformed images; see ``MinibatchSource`` for the schedule options.

    ``transforms``: CNTK transforms (see ``amlvision.transforms.build_transforms``).
    ``channels``: decode channels when no ``scale`` transform says (default 3).
    ``num_workers``: decoding processes (default: CPU count, at most 4; 0 decodes in-process).
    """

    def __init__(
        self,
        data: str | Path | LabeledImages,
        split: str | None = None,
        *,
        transforms: TransformsConfig = None,
        channels: int | None = None,
        class_names: list[str] | None = None,
        num_workers: int | None = None,
        prefetch_batches: int = 2,
        **schedule: Any,
    ):
        self.images = open_images(data, split, class_names)
        if len(self.images) == 0:
            raise ValueError(f"{self.images.origin or data}: no images")
        self.pipeline = TransformPipeline(transforms)
        if channels is not None and self.pipeline.channels is not None and channels != self.pipeline.channels:
            raise ValueError(f"channels={channels} contradicts the scale transform's channels={self.pipeline.channels}")
        self.channels = self.pipeline.channels or channels or 3
        self.views = self.pipeline.views
        height, width = self._output_size()
        super().__init__(
            num_samples=len(self.images) * self.views,
            class_names=self.images.class_names,
            image_shape=(self.channels, height, width),
            **schedule,
        )
        self.num_workers = min(4, os.cpu_count() or 1) if num_workers is None else int(num_workers)
        self.prefetch_batches = prefetch_batches

    def _output_size(self) -> tuple[int, int]:
        size = self.pipeline.output_size(None)
        if size is None:
            first = self.images.load(0, self.channels)
            size = self.pipeline.output_size(first.shape[:2])
        if size is None:
            raise ValueError(
                f"{self.images.origin or 'images'}: the transforms {self.pipeline.describe()} give images of "
                "varying size; add a scale transform (or a crop with crop_size) so every sample has one shape"
            )
        return size

    def sample_labels(self) -> np.ndarray:
        """Sample ``i`` is view ``i % views`` of image ``i // views`` (as in ``_load_batch``)."""
        return np.repeat(np.asarray(self.images.labels, dtype=np.int64), self.views)

    def _load_batch(self, plan: BatchPlan) -> tuple[torch.Tensor, torch.Tensor]:
        pipeline = self.pipeline
        out = torch.empty((len(plan), *self.image_shape), dtype=torch.float32)
        draws = []
        image_index, views = np.divmod(plan.indices, self.views)
        for j in range(len(plan)):
            i = int(image_index[j])
            array = self.images.load(i, self.channels)
            sample, sample_draws = pipeline.prepare(array, random.Random(int(plan.keys[j])), int(views[j]))
            if tuple(sample.shape) != self.image_shape:
                raise ValueError(
                    f"{self.images.describe(i)}: transforms produced shape {tuple(sample.shape)}, expected "
                    f"{self.image_shape} (C, H, W); images of different sizes need a scale transform"
                )
            out[j] = sample
            draws.append(sample_draws)
        if pipeline.batch_tail:
            out = pipeline.finish_batch(out, draws)
        labels = torch.from_numpy(self.images.labels[image_index])
        return out, labels

    def _load_batches(self, plans: Iterable[BatchPlan]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        plans = list(plans)
        if self.num_workers <= 0 or len(plans) <= 1:
            yield from (self._load_batch(plan) for plan in plans)
            return
        loader = DataLoader(
            _Plans(self, plans),
            batch_size=None,
            shuffle=False,
            num_workers=min(self.num_workers, len(plans)),
            prefetch_factor=self.prefetch_batches,
        )
        batches = iter(loader)
        try:
            for item in batches:
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            del batches  # shut the workers down now, not whenever the generator is collected
