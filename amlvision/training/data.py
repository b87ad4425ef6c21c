"""Turn the resolved ``--data`` (a ``Dataset``, resolved once) and ``--reader`` into training and held-out sources.

``--data`` is resolved exactly once, by ``amlvision.data.resolve.resolve`` at the top of
``load_training_data`` (or by the caller, who passes the ``Dataset``); nothing below asks again what
kind of data it is. Sources come from ``amlvision.sources.factory.make_source`` (``packed``, ``image`` or ``ctf``).

The held-out split is the data's own test split (``test``, ``validation`` or ``val``) when it has one.
Otherwise a seeded, stratified ``val_fraction`` of the training split is drawn with scikit-learn's
``train_test_split``; its indexes go to ``outputs/split.json``, and the two parts are handed to the
reader in its own format: a derived packed directory (``packed``) or CNTK map files
``train_map.txt`` / ``validation_map.txt`` in ``outputs/data`` (``image``).

Augmentation in CNTK terms: CNTK's CIFAR-10 tutorials crop 32x32 at random (``randomside``,
``side_ratio`` 0.8) out of images pre-padded to 40x40, which is a random translation of up to 4
pixels plus (CNTK's default for random crops) a random mirror. ``translate`` and ``flip`` express
exactly that on un-padded data (packed reader, vectorised). ``crop_type`` / ``side_ratio`` /
``jitter_type`` / ``scale`` add CNTK's own ``crop`` and ``scale`` transforms (per image).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from amlvision.data.collection import LabeledImages
from amlvision.data.resolve import Dataset, SourceOptions, resolve
from amlvision.formats.packed import PackedDataset, is_packed, write_packed
from amlvision.formats.splits import DERIVED_HELDOUT, HELDOUT_SPLITS, TRAIN_SPLITS, first_present
from amlvision.sources.factory import make_source
from amlvision.training.config import TrainConfig


@dataclass
class TrainingData:
    """What the loop needs to know about the data, whatever the reader."""

    train: Any
    heldout: Any
    class_names: list[str]
    image_shape: tuple[int, int, int]  # C, H, W as the model sees it
    heldout_name: str
    checksum: str
    split: dict[str, Any] = field(default_factory=dict)
    stats_source: Any = None  # the training split, un-augmented, in file order (normalisation, whitening)


def transforms_config(
    cfg: TrainConfig, image_shape: tuple[int, int, int], always_scale: bool = False
) -> list[dict[str, Any]]:
    """CNTK ``crop`` / ``scale`` transforms for the reader (empty when the vectorised path suffices).

    ``always_scale``: the image reader decodes files of any size and mode, so its ``scale`` transform
    always fixes the model's size and channel count.
    """
    channels, height, width = image_shape
    if cfg.scale:
        width, height = cfg.scale
    transforms: list[dict[str, Any]] = []
    if cfg.crop_type != "none":
        transforms.append(
            {
                "type": "crop",
                "crop_type": cfg.crop_type,
                "side_ratio": cfg.side_ratio,
                "jitter_type": cfg.jitter_type,
                "hflip": cfg.flip,
            }
        )
    if transforms or cfg.scale or always_scale:
        transforms.append(
            {
                "type": "scale",
                "width": width,
                "height": height,
                "channels": channels,
                "interpolations": cfg.interpolations,
            }
        )
    return transforms


def augment_config(cfg: TrainConfig) -> dict[str, Any]:
    """Vectorised flip/translate for the packed reader (flips come from the crop when one is configured)."""
    flip = cfg.flip and cfg.crop_type == "none"
    return {"flip": "random" if flip else "none", "translate": cfg.translate}


def source_options(cfg: TrainConfig) -> SourceOptions:
    """The label-file / file-name options of the run (``amlvision.data.cli_options``) as ``SourceOptions``."""
    from amlvision.data.cli_options import parse_classes

    classes = parse_classes(cfg.classes)
    return SourceOptions(
        labels_file=cfg.labels_file,
        file_column=cfg.file_column,
        label_column=cfg.label_column,
        delimiter=cfg.delimiter,
        has_header=cfg.has_header,
        file_suffix=cfg.file_suffix,
        class_names=tuple(classes) if classes else None,
        label_from_name=cfg.label_from_name,
    )


def resolve_data(cfg: TrainConfig) -> Dataset:
    """``cfg.data`` with the run's source options, resolved (the one call per run)."""
    return resolve(cfg.data, source_options(cfg))


def resolve_packed(cfg: TrainConfig, dataset: Dataset) -> Path:
    """The packed directory of ``dataset`` (packed once into the cache by ``amlvision.pack.ensure_packed``)."""
    if dataset.kind == "packed":
        return dataset.root
    from amlvision.pack import ensure_packed

    size = (cfg.scale[1], cfg.scale[0]) if cfg.scale else None
    return Path(ensure_packed(dataset, channels=cfg.channels or None, size=size))


def derived_packed(cfg: TrainConfig, data: Path) -> Path:
    """The packed classification data ``--from-boxes`` derives from COCO boxes (kept with the run's outputs)."""
    from amlvision.detection.derive import derive_packed

    size = tuple(cfg.scale) if cfg.scale else (32, 32)
    return derive_packed(
        data,
        cfg.from_boxes,
        size,
        Path(cfg.outputs) / "data",
        context=cfg.box_context,
        min_size=cfg.box_min_size,
        val_fraction=cfg.val_fraction,
        seed=cfg.seed,
    )


def _stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    indexes = np.arange(len(labels))
    counts = np.bincount(labels)
    stratify = labels if counts[counts > 0].min() >= 2 else None
    train_idx, val_idx = train_test_split(indexes, test_size=fraction, random_state=seed, stratify=stratify)
    return np.sort(train_idx), np.sort(val_idx)


def _packed_checksum(packed: PackedDataset) -> str:
    digest = hashlib.sha256()
    for split in sorted(packed.splits):
        for name, value in sorted(packed.manifest["splits"][split]["sha256"].items()):
            digest.update(f"{name}={value}\n".encode())
    return digest.hexdigest()[:16]


class _Splitter:
    """Writes the stratified train/validation parts in the reader's own format."""

    def __init__(self, cfg: TrainConfig, work: Path):
        self.cfg, self.work = cfg, work

    def packed(self, path: Path, split: str, train_idx: np.ndarray, val_idx: np.ndarray) -> Path:
        packed = PackedDataset(path)
        key = hashlib.sha256(f"{_packed_checksum(packed)}:{split}:{self.cfg.seed}:{self.cfg.val_fraction}".encode())
        name = f"{path.name}.split-{key.hexdigest()[:12]}"
        out = path.parent / name
        if not is_packed(out) and not os.access(path.parent, os.W_OK):
            out = self.work / "data" / name  # a read-only packed copy: keep the split with the run
        if not is_packed(out):
            images, labels = packed.images(split), packed.labels(split)
            with contextlib.suppress(FileExistsError):  # another rank or run wrote it first
                write_packed(
                    out,
                    {
                        "train": (images[train_idx], labels[train_idx]),
                        DERIVED_HELDOUT: (images[val_idx], labels[val_idx]),
                    },
                    packed.class_names,
                    source={
                        "derived_from": str(path),
                        "split": split,
                        "seed": self.cfg.seed,
                        "val_fraction": self.cfg.val_fraction,
                    },
                )
        return out

    def map_files(self, items: Any, train_idx: np.ndarray, val_idx: np.ndarray) -> dict[str, LabeledImages]:
        """The two parts as ``LabeledImages`` (handed to the reader), recorded as map files in ``outputs/data``."""
        if items.paths is None:
            raise ValueError(
                f"{self.cfg.data}: in-memory images cannot be split for the image reader; use --reader packed"
            )
        folder = self.work / "data"
        folder.mkdir(parents=True, exist_ok=True)
        parts = {}
        for name, idx in (("train", train_idx), (DERIVED_HELDOUT, val_idx)):
            lines = [f"{Path(items.paths[i]).resolve()}\t{int(items.labels[i])}\n" for i in idx]
            (folder / f"{name}_map.txt").write_text("".join(lines))
            parts[name] = LabeledImages(
                class_names=items.class_names,
                labels=items.labels[idx],
                paths=[items.paths[i] for i in idx],
                origin=str(folder / f"{name}_map.txt"),
            )
        return parts


def load_training_data(
    cfg: TrainConfig,
    *,
    rank: int = 0,
    world_size: int = 1,
    device: torch.device | None = None,
    drop_last: bool = False,
    dataset: Dataset | None = None,
) -> TrainingData:
    """Open ``dataset`` (``cfg.data``, resolved here when not given) with ``cfg.reader``; pick the held-out split."""
    dataset = dataset or cfg.resolved or resolve_data(cfg)
    if cfg.from_boxes != "none":  # classification samples derived from the boxes (amlvision/detection/derive.py)
        if dataset.task != "detection":
            raise ValueError(f"--from-boxes {cfg.from_boxes}: --data {cfg.data} is a {dataset.kind} dataset, not boxes")
        dataset = resolve(str(derived_packed(cfg, dataset.root)))
    if dataset.task != "classification":
        raise ValueError(
            f"--data {cfg.data}: a {dataset.kind} dataset ({dataset.task}); this trainer classifies images"
        )
    class_names: list[str] | None = None
    image_shape: tuple[int, int, int] | None = None
    labels_of = None
    data: Any  # what the reader opens: a packed directory, a CTF file/folder, or {split: LabeledImages}
    if cfg.reader == "packed":
        data = resolve_packed(cfg, dataset)
        packed = PackedDataset(data)
        splits, checksum = packed.splits, _packed_checksum(packed)
        labels_of = packed.labels
    elif cfg.reader == "image":
        data = dataset.collection()
        splits, checksum = list(data), dataset.fingerprint[:16]
        class_names = dataset.class_names
        channels = cfg.channels or dataset.channels
        height, width = dataset.image_shape[:2]
        image_shape = (channels, height, width)
        labels_of = lambda split: data[split].labels  # noqa: E731
    else:
        data = dataset.root
        splits, checksum = dataset.splits, dataset.fingerprint[:16]
    train_split = first_present(TRAIN_SPLITS, splits)
    if train_split is None:
        raise ValueError(f"{cfg.data}: no 'train' or 'all' split to train on (splits: {splits})")
    heldout_split = first_present(HELDOUT_SPLITS, splits)
    split_record: dict[str, Any] = {"train_split": train_split}
    if heldout_split is None:
        if cfg.val_fraction <= 0:
            raise ValueError(f"{cfg.data}: no test split and --val-fraction 0; nothing to evaluate on")
        if labels_of is None:
            raise ValueError(
                f"{cfg.data}: CTF data without a test split; give train.ctf and test.ctf (CNTK's "
                "Train_cntk_text.txt / Test_cntk_text.txt) or use --reader packed"
            )
        train_idx, val_idx = _stratified_split(labels_of(train_split), cfg.val_fraction, cfg.seed)
        split_record.update(
            heldout="validation (stratified from train)",
            seed=cfg.seed,
            fraction=cfg.val_fraction,
            source_split=train_split,
            train_indexes=train_idx.tolist(),
            validation_indexes=val_idx.tolist(),
        )
        splitter = _Splitter(cfg, Path(cfg.outputs))
        if cfg.reader == "packed":
            data = splitter.packed(data, train_split, train_idx, val_idx)
        else:
            data = splitter.map_files(data[train_split], train_idx, val_idx)
        train_split, heldout_split, heldout_name = "train", DERIVED_HELDOUT, DERIVED_HELDOUT
    else:
        split_record["heldout"] = heldout_split
        heldout_name = heldout_split

    def reader_data(split: str) -> Any:
        return data[split] if isinstance(data, dict) else data

    common = {"seed": cfg.seed, "device": device, "class_names": class_names}
    if cfg.reader == "image":
        common["num_workers"] = cfg.workers
    if image_shape is None:
        image_shape = tuple(
            make_source(cfg.reader, reader_data(train_split), train_split, train=False, **common).image_shape
        )
    transforms = transforms_config(cfg, image_shape, always_scale=cfg.reader == "image")
    if cfg.scale:
        image_shape = (image_shape[0], cfg.scale[1], cfg.scale[0])
    train = make_source(
        cfg.reader,
        reader_data(train_split),
        train_split,
        train=True,
        transforms=transforms or None,
        augment=augment_config(cfg),
        rank=rank,
        world_size=world_size,
        drop_last=drop_last,
        sampler=cfg.sampler,
        **({"epoch_size": cfg.epoch_size} if cfg.epoch_size else {}),
        **common,
    )
    heldout = make_source(
        cfg.reader, reader_data(heldout_split), heldout_split, train=False, transforms=transforms or None, **common
    )
    stats = make_source(
        cfg.reader, reader_data(train_split), train_split, train=False, transforms=transforms or None, **common
    )
    return TrainingData(
        train=train,
        heldout=heldout,
        class_names=list(train.class_names),
        image_shape=image_shape,
        heldout_name=heldout_name,
        checksum=checksum,
        split=split_record,
        stats_source=stats,
    )
