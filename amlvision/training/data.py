"""Turn ``--data`` / ``--reader`` into a training source and a held-out source.

Sources come from ``amlvision.sources.factory.make_source`` (``packed``, ``image`` or ``ctf``).

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
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from amlvision.packed import PackedDataset, is_packed, write_packed
from amlvision.sources.factory import make_source
from amlvision.training.config import TrainConfig

TEST_SPLITS = ("test", "validation", "val")
TRAIN_SPLITS = ("train", "all")


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


def detect_channels(data: str | Path) -> int:
    """1 when the source's first image is grayscale, else 3 (so gray data trains as gray)."""
    from PIL import Image

    from amlvision.data.discover import open_collection

    for items in open_collection(data).values():
        if not len(items):
            continue
        if items.arrays is not None:
            return 1 if items.arrays.shape[3] == 1 else 3
        with Image.open(items.paths[0]) as img:
            return 1 if img.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F") else 3
    return 3


def download_cifar10() -> Path:
    """The official CIFAR-10 python archive via ``amlvision download cifar10`` (md5-verified; offline it explains)."""
    from amlvision.data.download import DownloadError, fetch

    try:
        return Path(fetch("cifar10"))
    except DownloadError as exc:
        raise ValueError(f"--data cifar10: {exc}") from exc


def resolve_packed(cfg: TrainConfig, data: Path) -> Path:
    """A packed directory for ``data`` (packed once into the cache by ``amlvision.pack.ensure_packed``)."""
    if data.is_dir() and is_packed(data):
        return data
    from amlvision.pack import ensure_packed

    channels = cfg.channels or detect_channels(data)
    size = (cfg.scale[1], cfg.scale[0]) if cfg.scale else None
    return Path(ensure_packed(data, channels=channels, size=size))


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


def _ctf_splits(data: Path) -> list[str]:
    meta = data / "dataset.json" if data.is_dir() else data.parent / "dataset.json"
    if data.is_file():
        return ["train"]
    if meta.is_file():
        return list(json.loads(meta.read_text()).get("files", {}))
    return [p.stem for p in sorted(data.glob("*.ctf"))]


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
                    {"train": (images[train_idx], labels[train_idx]), "validation": (images[val_idx], labels[val_idx])},
                    packed.class_names,
                    source={
                        "derived_from": str(path),
                        "split": split,
                        "seed": self.cfg.seed,
                        "val_fraction": self.cfg.val_fraction,
                    },
                )
        return out

    def map_files(self, items: Any, train_idx: np.ndarray, val_idx: np.ndarray) -> Path:
        if items.paths is None:
            raise ValueError(
                f"{self.cfg.data}: in-memory images cannot be split for the image reader; use --reader packed"
            )
        folder = self.work / "data"
        folder.mkdir(parents=True, exist_ok=True)
        for name, idx in (("train", train_idx), ("validation", val_idx)):
            lines = [f"{Path(items.paths[i]).resolve()}\t{int(items.labels[i])}\n" for i in idx]
            (folder / f"{name}_map.txt").write_text("".join(lines))
        return folder


def load_training_data(
    cfg: TrainConfig, *, rank: int = 0, world_size: int = 1, device: torch.device | None = None, drop_last: bool = False
) -> TrainingData:
    """Open ``cfg.data`` with ``cfg.reader`` and decide the held-out split (see module docstring)."""
    data = download_cifar10() if cfg.data == "cifar10" else Path(cfg.data)
    if not data.exists():
        raise FileNotFoundError(f"--data {cfg.data}: no such file or folder")
    class_names: list[str] | None = None
    image_shape: tuple[int, int, int] | None = None
    labels_of = None
    if cfg.from_boxes != "none":  # issue 12 hook; issue-9d's resolver can make this a `coco:` kind
        data = derived_packed(cfg, data)
    if cfg.reader == "packed":
        data = resolve_packed(cfg, data)
        packed = PackedDataset(data)
        splits, checksum = packed.splits, _packed_checksum(packed)
        labels_of = packed.labels
    elif cfg.reader == "image":
        from amlvision.data.discover import open_collection
        from amlvision.pack import source_fingerprint

        collection = open_collection(data)
        splits, checksum = list(collection), source_fingerprint(data)[:16]
        first = next(iter(collection.values()))
        class_names = first.class_names
        channels = cfg.channels or detect_channels(data)
        height, width = first.load(0, channels).shape[:2]
        image_shape = (channels, height, width)
        labels_of = lambda split: collection[split].labels  # noqa: E731
    else:
        from amlvision.pack import source_fingerprint

        splits, checksum = _ctf_splits(data), source_fingerprint(data)[:16]
    train_split = next((s for s in TRAIN_SPLITS if s in splits), None)
    if train_split is None:
        raise ValueError(f"{cfg.data}: no 'train' or 'all' split to train on (splits: {splits})")
    heldout_split = next((s for s in TEST_SPLITS if s in splits), None)
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
            data = splitter.map_files(collection[train_split], train_idx, val_idx)
        train_split, heldout_split, heldout_name = "train", "validation", "validation"
    else:
        split_record["heldout"] = heldout_split
        heldout_name = heldout_split

    common = {"seed": cfg.seed, "device": device, "class_names": class_names}
    if cfg.reader == "image":
        common["num_workers"] = cfg.workers
    if image_shape is None:
        image_shape = tuple(make_source(cfg.reader, data, train_split, train=False, **common).image_shape)
    transforms = transforms_config(cfg, image_shape, always_scale=cfg.reader == "image")
    if cfg.scale:
        image_shape = (image_shape[0], cfg.scale[1], cfg.scale[0])
    train = make_source(
        cfg.reader,
        data,
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
    heldout = make_source(cfg.reader, data, heldout_split, train=False, transforms=transforms or None, **common)
    stats = make_source(cfg.reader, data, train_split, train=False, transforms=transforms or None, **common)
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
