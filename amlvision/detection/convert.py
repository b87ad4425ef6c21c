"""Which detection format a path holds, reading all its splits, and converting between formats.

``sniff_detection_format`` looks only at names (no file is parsed), so it is cheap enough for a
resolver to call on any path. ``read_detection_splits`` returns ``{split: DetectionSet}`` with one
class list shared by every split; ``pack_detection`` writes them in another format, atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from amlvision.detection.annotations import DetectionSet, ImageBoxes
from amlvision.detection.cntk import cntk_splits, read_cntk, write_cntk
from amlvision.detection.coco import coco_splits, read_coco, write_coco_folder
from amlvision.detection.files import IMAGE_SUFFIXES
from amlvision.detection.voc import read_voc, read_voc_pair, voc_splits, write_voc
from amlvision.detection.yolo import read_yolo, write_yolo, yolo_splits

FORMATS = ("coco", "voc", "cntk", "yolo")
WRITERS: dict[str, Callable[..., Path]] = {
    "coco": write_coco_folder,
    "voc": write_voc,
    "cntk": write_cntk,
    "yolo": write_yolo,
}


class DetectionFormatError(ValueError):
    """The path holds no detection data this project reads, or the splits cannot be combined."""


def _count(folder: Path, suffixes: tuple[str, ...]) -> int:
    try:
        return sum(1 for p in folder.iterdir() if p.suffix.lower() in suffixes)
    except OSError:
        return 0


def voc_pair_folders(root: str | Path) -> tuple[Path, Path] | None:
    """(images folder, XML folder) of a flat pair under ``root``: the folder (root or a child) with the
    most XML files, and the one holding images with the most matching stems."""
    root = Path(root)
    candidates = [root, *sorted(p for p in root.iterdir() if p.is_dir())]
    xml_dir = max(candidates, key=lambda d: _count(d, (".xml",)))
    if _count(xml_dir, (".xml",)) == 0:
        return None
    stems = {p.stem for p in xml_dir.glob("*.xml")}

    def matches(folder: Path) -> int:
        return sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.stem in stems)

    images_dir = max(candidates, key=matches)
    return (images_dir, xml_dir) if matches(images_dir) else None


def sniff_detection_format(path: str | Path) -> str | None:
    """``coco``, ``voc``, ``cntk`` or ``yolo`` from the names under ``path``; None when none fits."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() != ".json":
            return None
        with open(path, "rb") as f:  # COCO's keys come first (info and licenses are short)
            head = f.read(1 << 16)
        return "coco" if any(key in head for key in (b'"images"', b'"annotations"', b'"categories"')) else None
    if not path.is_dir():
        return None
    if any((path / "annotations").glob("instances_*.json")):
        return "coco"
    if (path / "Annotations").is_dir():
        return "voc"
    if (path / "class_map.txt").is_file() or cntk_splits(path):
        return "cntk"
    if any((path / n).is_file() for n in ("data.yaml", "dataset.yaml", "obj.names")):
        return "yolo"
    if voc_pair_folders(path) is not None:  # before images/ + labels/: the XML folder may be called labels/
        return "voc"
    if (path / "images").is_dir() and (path / "labels").is_dir():
        return "yolo"
    if (path / "classes.txt").is_file() and _count(path, (".txt",)) > 1:
        return "yolo"  # Darknet: images and .txt labels side by side with classes.txt
    return None


def align_classes(splits: Mapping[str, DetectionSet]) -> dict[str, DetectionSet]:
    """The splits with one shared class list (the union, in order of first appearance; sorted when every
    split's list is sorted), labels remapped. Category ids follow their class."""
    lists = [ds.class_names for ds in splits.values()]
    if all(names == lists[0] for names in lists):
        return dict(splits)
    names: list[str] = []
    ids: dict[str, int] = {}
    for ds in splits.values():
        for name, cid in zip(ds.class_names, ds.category_ids, strict=True):
            if name not in ids:
                names.append(name)
                ids[name] = cid
    if all(n == sorted(n) for n in lists):
        names = sorted(names)
    if len(set(ids.values())) != len(ids):  # the formats' ids clash once merged: number them anew
        ids = {name: i + 1 for i, name in enumerate(names)}
    index = {name: i for i, name in enumerate(names)}
    aligned = {}
    for split, ds in splits.items():
        remap = np.array([index[n] for n in ds.class_names], np.int64)
        images = [
            ImageBoxes(im.path, im.width, im.height, im.boxes, remap[im.labels], im.image_id, im.iscrowd, im.difficult)
            for im in ds.images
        ]
        aligned[split] = DetectionSet(names, images, [ids[n] for n in names], ds.invalid, ds.source)
    return aligned


def common_classes(splits: Mapping[str, DetectionSet]) -> list[str]:
    """The class list every split shares (writers need one); see ``align_classes``."""
    lists = [ds.class_names for ds in splits.values()]
    if not lists:
        raise DetectionFormatError("nothing to write: no splits")
    if any(names != lists[0] for names in lists):
        raise DetectionFormatError("the splits have different class lists; pass them through align_classes first")
    return list(lists[0])


def read_detection_splits(
    path: str | Path, fmt: str | None = None, class_names: list[str] | None = None
) -> dict[str, DetectionSet]:
    """Every split of the detection data at ``path`` (``fmt`` or sniffed), sharing one class list."""
    path = Path(path)
    fmt = fmt or sniff_detection_format(path)
    if fmt is None:
        raise DetectionFormatError(
            f"{path}: no detection data found (COCO annotations/instances_*.json, VOC Annotations/ or an "
            "image + XML folder pair, CNTK class_map.txt + *_roi_file.txt, YOLO labels/ + data.yaml)"
        )
    if fmt == "coco":
        splits = {split: read_coco(json_path) for split, json_path in coco_splits(path).items()}
    elif fmt == "voc":
        if (path / "Annotations").is_dir():
            splits = {split: read_voc(path, split, class_names) for split in voc_splits(path)}
        else:
            pair = voc_pair_folders(path)
            if pair is None:
                raise DetectionFormatError(f"{path}: no folder of XML files with images of the same stems")
            splits = {"train": read_voc_pair(*pair, class_names=class_names, class_list_root=path)}
    elif fmt == "cntk":
        splits = {split: read_cntk(path, split, class_names) for split in cntk_splits(path)}
    elif fmt == "yolo":
        splits = {split: read_yolo(path, split, class_names) for split in yolo_splits(path)}
    else:
        raise DetectionFormatError(f"unknown detection format {fmt!r} (one of {', '.join(FORMATS)})")
    if not splits:
        raise DetectionFormatError(f"{path}: {fmt} layout without any split")
    return align_classes(splits)


def read_detection(
    path: str | Path, split: str | None = None, fmt: str | None = None, class_names: list[str] | None = None
) -> DetectionSet:
    """One split of the detection data at ``path`` (the only one when ``split`` is None)."""
    splits = read_detection_splits(path, fmt, class_names)
    if split is None:
        if len(splits) != 1:
            raise DetectionFormatError(f"{path}: has splits {sorted(splits)}; say which one")
        return next(iter(splits.values()))
    if split not in splits:
        raise DetectionFormatError(f"{path}: no split {split!r} (has {sorted(splits)})")
    return splits[split]


@dataclass
class DetectionPackReport:
    """What ``pack_detection`` wrote: images and boxes per split, and what the target format cannot hold."""

    out: Path
    to: str
    images: dict[str, int] = field(default_factory=dict)
    boxes: dict[str, int] = field(default_factory=dict)
    skipped_on_read: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"wrote {self.to} detection data to {self.out}"]
        lines += [f"  {split}: {self.images[split]} images, {self.boxes[split]} boxes" for split in self.images]
        if self.skipped_on_read:
            lines.append(f"  {self.skipped_on_read} invalid boxes or files skipped on reading (inspect lists them)")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def pack_detection(
    src: str | Path,
    to: str,
    out: str | Path,
    overwrite: bool = False,
    fmt: str | None = None,
    class_names: list[str] | None = None,
) -> DetectionPackReport:
    """Convert the detection data at ``src`` to ``to`` (coco, voc, cntk, yolo) in ``out``, atomically."""
    if to not in WRITERS:
        raise DetectionFormatError(f"unknown target format {to!r} (one of {', '.join(FORMATS)})")
    splits = read_detection_splits(src, fmt, class_names)
    WRITERS[to](splits, out, overwrite=overwrite)
    report = DetectionPackReport(Path(out), to)
    crowd = difficult = 0
    for split, ds in splits.items():
        crowd_here = sum(int(im.iscrowd.sum()) for im in ds.images)
        report.images[split] = len(ds.images)
        report.boxes[split] = ds.num_boxes - (crowd_here if to in ("cntk", "yolo") else 0)
        report.skipped_on_read += len(ds.invalid)
        crowd += crowd_here
        difficult += sum(int(im.difficult.sum()) for im in ds.images)
    if to in ("cntk", "yolo") and crowd:
        report.notes.append(f"{crowd} crowd boxes not written ({to} has no crowd flag)")
    if to in ("cntk", "yolo") and difficult:
        report.notes.append(f"{difficult} difficult boxes written as ordinary boxes ({to} has no difficult flag)")
    if to == "voc":
        report.notes.append("VOC boxes are integer pixels: edges rounded to the nearest pixel")
    return report
