"""``make_source``: the one place train.py / evaluate turn (reader, data, split) into a minibatch source.

Readers:

* ``packed`` — ``data`` is a packed directory (``amlvision pack --to packed``). Train-time
  augmentation is ``augment`` (vectorised flip / translate, ``amlvision.augment``); a CNTK ``mean``
  transform is subtracted on whole batches. Any other CNTK transform (crop, scale, color) makes the
  source an ``ImageSource`` over the packed arrays, so CNTK's per-image transforms work on packed
  data too (slower than the vectorised path, still parallel).
* ``image`` — ``data`` is one split's ``LabeledImages`` (``Dataset.open(split)``, what train.py passes),
  a resolved ``Dataset``, or a path ``amlvision.data.resolve`` resolves; CNTK ``transforms`` per image.
* ``ctf`` — ``data`` is a ``.ctf`` file or a folder from ``amlvision pack --to ctf``
  (``<split>.ctf`` + ``dataset.json``); ``image_shape`` / ``class_names`` come from ``dataset.json``
  beside the file unless given.

``train=True``: randomised sweeps and the augmentation / transforms as given. ``train=False``: file
order, no ``augment``, and — unless ``eval_transforms`` is given — the ``transforms`` without the
random ones (``color`` and ``randomside`` / ``randomarea`` crops are dropped; ``center``,
``multiview10``, ``scale`` and ``mean`` stay), the usual CNTK train/test pairing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from amlvision.augment import BatchAugment
from amlvision.data.collection import LabeledImages
from amlvision.data.resolve import Dataset
from amlvision.formats.datasetjson import read_dataset_json
from amlvision.sources.base import FULL_DATA_SWEEP, MinibatchSource
from amlvision.transforms import Crop, Mean, build_transforms
from amlvision.transforms.base import ImageTransform
from amlvision.transforms.color import Color
from amlvision.transforms.pipeline import TransformsConfig

READERS = ("packed", "image", "ctf")


def _eval_transforms(transforms: list[ImageTransform]) -> list[ImageTransform]:
    """Drop the random transforms for evaluation (see module docstring)."""
    keep = []
    for transform in transforms:
        if isinstance(transform, Color):
            continue
        if isinstance(transform, Crop) and transform.crop_type in ("randomside", "randomarea"):
            continue
        keep.append(transform)
    return keep


def _mean_image(transforms: list[ImageTransform]) -> np.ndarray | None:
    """The ``C x H x W`` mean image of the (only) ``mean`` transform, applied batch-wise by packed / ctf."""
    means = [t for t in transforms if isinstance(t, Mean)]
    if len(means) > 1:
        raise ValueError("more than one mean transform")
    return means[0].mean_image.numpy() if means else None


def _make_ctf(data: Path, split: str, mean: np.ndarray | None, options: dict[str, Any], schedule: dict) -> Any:
    from amlvision.sources.ctf_source import CTFSource

    meta = read_dataset_json(data)
    file = data / meta.get("files", {}).get(split, f"{split}.ctf") if data.is_dir() else data
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no CTF file for split {split!r}")
    image_shape = options.get("image_shape")
    if image_shape is None:
        if not meta.get("image_shape"):
            raise ValueError(f"{file}: give image_shape (C, H, W); no dataset.json beside it says")
        h, w, c = meta["image_shape"]
        image_shape = (c, h, w)
    class_names = options.get("class_names") or meta.get("class_names")
    num_classes = options.get("num_classes")
    return CTFSource(file, tuple(image_shape), num_classes, class_names=class_names, mean=mean, **schedule)


def make_source(
    reader: str,
    data: str | Path | Dataset | LabeledImages,
    split: str,
    *,
    train: bool,
    transforms: TransformsConfig = None,
    eval_transforms: TransformsConfig = None,
    augment: BatchAugment | Mapping[str, Any] | None = None,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
    epoch_size: int = FULL_DATA_SWEEP,
    max_sweeps: int | None = None,
    max_samples: int | None = None,
    device: Any = None,
    channels_last: bool = False,
    num_workers: int | None = None,
    image_shape: Sequence[int] | None = None,
    class_names: list[str] | None = None,
    num_classes: int | None = None,
    sampler: str = "uniform",
) -> MinibatchSource:
    """A source with ``class_names``, ``num_classes``, ``image_shape`` (C, H, W), ``len`` and ``iter_epoch``.

    ``transforms``: CNTK transforms config (``amlvision.transforms.build_transforms``).
    ``augment``: ``BatchAugment`` fields for the packed fast path (``flip``: none|random|alternate,
    ``translate``: max shift, ``pad_mode``, ``fill``); used only when ``train``.
    ``drop_last``: give every rank exactly ``N // world_size`` samples per sweep.
    ``sampler``: ``uniform`` (a permutation per sweep) or ``balanced`` (class-balanced sweeps,
    ``amlvision.sources.sampling``); used only when ``train``.
    """
    if reader not in READERS:
        raise ValueError(f"reader must be one of {READERS}, got {reader!r}")
    if isinstance(data, Dataset):
        data = data.open(split) if reader == "image" else data.root
    elif not isinstance(data, LabeledImages):
        data = Path(data)
    built = build_transforms(transforms)
    if not train:
        built = build_transforms(eval_transforms) if eval_transforms is not None else _eval_transforms(built)
    schedule = dict(
        randomize=train,
        seed=seed,
        rank=rank,
        world_size=world_size,
        drop_last=drop_last,
        epoch_size=epoch_size,
        max_sweeps=max_sweeps,
        max_samples=max_samples,
        device=device,
        channels_last=channels_last,
        sampler=sampler if train else "uniform",
    )
    if reader == "image":
        from amlvision.sources.image_source import ImageSource

        return ImageSource(data, split, transforms=built, class_names=class_names, num_workers=num_workers, **schedule)

    per_image = [t for t in built if not isinstance(t, Mean)]
    if reader == "ctf":
        if per_image:
            raise ValueError("the ctf reader supports only the mean transform; use the image or packed reader")
        options = {"image_shape": image_shape, "class_names": class_names, "num_classes": num_classes}
        return _make_ctf(data, split, _mean_image(built), options, schedule)

    from amlvision.formats.packed import PackedDataset

    if per_image:  # CNTK per-image transforms over the packed arrays
        from amlvision.sources.image_source import ImageSource

        dataset = PackedDataset(data)
        arrays = LabeledImages(
            class_names=dataset.class_names,
            labels=dataset.labels(split),
            arrays=dataset.images(split),
            origin=f"{data}:{split}",
        )
        return ImageSource(arrays, transforms=built, num_workers=num_workers, **schedule)

    from amlvision.sources.packed_source import PackedSource

    if isinstance(augment, Mapping):
        augment = BatchAugment(**augment)
    return PackedSource(data, split, augment=augment if train else None, mean=_mean_image(built), **schedule)
