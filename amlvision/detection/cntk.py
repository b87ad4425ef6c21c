"""Read and write CNTK's Faster R-CNN annotation files (Examples/Image/Detection in microsoft/CNTK).

A CNTK detection folder (as ``utils/annotations/annotations_helper.py`` writes it for Grocery):

- ``class_map.txt``: ``name<TAB>index`` per line, index 0 being ``__background__``;
- ``<split>_img_file.txt``: ``seq<TAB>image path<TAB>0``, the path relative to this file's folder;
- ``<split>_roi_file.txt``: ``seq |roiAndLabel x1 y1 x2 y2 label x1 y1 x2 y2 label ...``: absolute
  pixel corners in the original image and the class index of ``class_map.txt``, matched to the image
  by ``seq`` (CTF sequence ids).

Older files (FasterRCNN/Data/Grocery ``*.GTRois.txt``, Pascal ``*_rois_topleft_wh_rel.txt`` with
``*.imgMap.txt``) hold ``x y w h`` relative to the image width and height; every coordinate is then
at most 1, which is how ``box_form="auto"`` tells them apart. Their class list lived in the
training script, so pass ``class_names`` (without the background) when no ``class_map.txt`` is there.

Labels are ``class index - 1`` (background dropped); ``category_ids`` keep CNTK's indexes. Image
sizes come from the image headers. Boxes are written as the shortest text that reads back to the
same float32 (lossless); CNTK has no crowd or difficult flag, so crowd boxes are not written
(training would learn a box around many objects) and difficult boxes become ordinary ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from amlvision.detection.annotations import DetectionSet, ImageBoxes, InvalidBox
from amlvision.detection.checks import WHOLE_FILE, box_problems, clip_boxes, warn_skipped
from amlvision.detection.files import atomic_dir, image_size, number, place_image, unique_names

BACKGROUND = "__background__"
STREAM = "|roiAndLabel"
# (image list, ROI file) name patterns: the current annotations_helper names, then the older example files
FILE_PATTERNS = (("{}_img_file.txt", "{}_roi_file.txt"), ("{}.imgMap.txt", "{}.GTRois.txt"))


class CntkFormatError(ValueError):
    """A class map or image list is malformed; the message names the file, line and field."""


def read_class_map(path: str | Path) -> list[str]:
    """Class names by CNTK index (index 0 is the background) from ``name<TAB>index`` lines."""
    path = Path(path)
    by_index: dict[int, str] = {}
    for number_, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rstrip("\r\n").rsplit("\t", 1) if "\t" in line else line.rsplit(None, 1)
        if len(parts) != 2 or not parts[1].strip().isdigit():
            raise CntkFormatError(f"{path}:{number_}: expected 'name<TAB>index', got {line!r}")
        index = int(parts[1])
        if index in by_index:
            raise CntkFormatError(f"{path}:{number_}: index {index} given twice")
        by_index[index] = parts[0].strip()
    if sorted(by_index) != list(range(len(by_index))):
        raise CntkFormatError(f"{path}: indexes must be 0..{len(by_index) - 1} (0 = {BACKGROUND})")
    return [by_index[i] for i in range(len(by_index))]


def _read_image_list(path: Path) -> list[tuple[int, Path]]:
    entries = []
    for number_, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0].strip().lstrip("-").isdigit():
            raise CntkFormatError(f"{path}:{number_}: expected 'seq<TAB>image path<TAB>0', got {line!r}")
        entries.append((int(fields[0]), path.parent / fields[1].strip()))
    return entries


def _read_rois(path: Path, invalid: list[InvalidBox]) -> dict[int, np.ndarray]:
    """``{seq: float64 [n, 5]}``; a line that cannot be read is listed in ``invalid`` and left out."""
    rois: dict[int, list[float]] = {}
    broken: set[int] = set()
    for number_, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        head, sep, values = line.partition(STREAM)
        where = f"{path}:{number_}"
        if not sep or not head.strip().lstrip("-").isdigit():
            invalid.append(InvalidBox(where, WHOLE_FILE, f"expected 'seq {STREAM} x1 y1 x2 y2 label ...'"))
            continue
        seq = int(head)
        # other CTF streams on the same line end the ROI values
        values = values.split("|", 1)[0].split()
        try:
            numbers = [float(v) for v in values]
        except ValueError as exc:
            invalid.append(InvalidBox(where, WHOLE_FILE, f"not a number ({exc})"))
            broken.add(seq)
            continue
        if len(numbers) % 5:
            invalid.append(InvalidBox(where, WHOLE_FILE, f"{len(numbers)} values: not 4 coordinates + label per box"))
            broken.add(seq)
            continue
        rois.setdefault(seq, []).extend(numbers)
    return {seq: np.asarray(v, np.float64).reshape(-1, 5) for seq, v in rois.items() if seq not in broken} | {
        seq: None for seq in broken
    }


def read_cntk_files(
    image_list: str | Path,
    roi_file: str | Path,
    class_map: str | Path | None = None,
    class_names: list[str] | None = None,
    box_form: str = "auto",
) -> DetectionSet:
    """Read one CNTK image list + ROI file pair; ``box_form``: ``"xyxy"``, ``"xywh-rel"`` or ``"auto"``."""
    image_list, roi_file = Path(image_list), Path(roi_file)
    if class_map is not None:
        names = read_class_map(class_map)[1:]
    elif class_names is not None:
        names = [n for n in class_names if n != BACKGROUND]
    else:
        raise CntkFormatError(f"{roi_file}: no class_map.txt beside it; pass class_names")
    if box_form not in ("auto", "xyxy", "xywh-rel"):
        raise ValueError(f"box_form must be auto, xyxy or xywh-rel, got {box_form!r}")
    for path in (image_list, roi_file):
        if not path.is_file():
            raise CntkFormatError(f"{path}: file not found")
    entries = _read_image_list(image_list)
    invalid: list[InvalidBox] = []
    rois = _read_rois(roi_file, invalid)
    if box_form == "auto":
        coords = [r[:, :4] for r in rois.values() if r is not None and len(r)]
        box_form = "xywh-rel" if coords and float(np.abs(np.concatenate(coords)).max()) <= 1.0 else "xyxy"

    images = []
    for seq, path in entries:
        where = f"{roi_file}: seq {seq}"
        if seq in rois and rois[seq] is None:
            continue  # its ROI line was unreadable (already listed): its boxes are unknown
        try:
            width, height = image_size(path)
        except OSError as exc:
            invalid.append(InvalidBox(f"{image_list}: seq {seq}", WHOLE_FILE, f"image {path} unreadable ({exc})"))
            continue
        values = rois.get(seq, np.zeros((0, 5)))
        boxes = values[:, :4].copy()
        if box_form == "xywh-rel":
            boxes *= [width, height, width, height]
            boxes[:, 2:] += boxes[:, :2]
        labels = values[:, 4]
        reasons = box_problems(boxes, width, height)
        known = (labels == np.round(labels)) & (labels >= 1) & (labels <= len(names))
        keep = np.zeros(len(values), bool)
        for k in range(len(values)):
            if not known[k]:
                invalid.append(InvalidBox(f"{where} box {k}", k, f"unknown class index {labels[k]:g}"))
            elif reasons[k]:
                invalid.append(InvalidBox(f"{where} box {k}", k, f"{reasons[k]} ({box_form} {values[k, :4].tolist()})"))
            else:
                keep[k] = True
        images.append(
            ImageBoxes(
                path=path,
                width=width,
                height=height,
                boxes=clip_boxes(boxes[keep], width, height),
                labels=labels[keep].astype(np.int64) - 1,
                image_id=seq,
            )
        )
    missing = sorted(set(rois) - {seq for seq, _ in entries})
    for seq in missing:
        invalid.append(InvalidBox(f"{roi_file}: seq {seq}", WHOLE_FILE, "no image with this seq in the image list"))
    warn_skipped(invalid)
    return DetectionSet(names, images, list(range(1, len(names) + 1)), invalid, source=str(roi_file))


def cntk_splits(root: str | Path) -> list[str]:
    """Split names of a CNTK detection folder (``train`` for ``train_img_file.txt`` + ``train_roi_file.txt``)."""
    root = Path(root)
    found = []
    for image_pattern, roi_pattern in FILE_PATTERNS:
        regex = re.compile("^" + re.escape(image_pattern).replace(r"\{\}", "(.+)") + "$")
        for path in sorted(root.iterdir()):
            match = regex.match(path.name)
            if match and (root / roi_pattern.format(match.group(1))).is_file() and match.group(1) not in found:
                found.append(match.group(1))
    return found


def read_cntk(
    root: str | Path, split: str = "train", class_names: list[str] | None = None, box_form: str = "auto"
) -> DetectionSet:
    """Read ``split`` of a CNTK detection folder (class_map.txt + the split's image list and ROI file)."""
    root = Path(root)
    for image_pattern, roi_pattern in FILE_PATTERNS:
        image_list, roi_file = root / image_pattern.format(split), root / roi_pattern.format(split)
        if image_list.is_file() and roi_file.is_file():
            class_map = root / "class_map.txt"
            return read_cntk_files(
                image_list, roi_file, class_map if class_map.is_file() and class_names is None else None,
                class_names, box_form,
            )  # fmt: skip
    raise CntkFormatError(f"{root}: no {split}_img_file.txt + {split}_roi_file.txt (splits here: {cntk_splits(root)})")


def write_cntk(splits: Mapping[str, DetectionSet], out: str | Path, overwrite: bool = False) -> Path:
    """Write ``splits`` as a CNTK detection folder (atomically), images under ``<split>/``."""
    from amlvision.detection.convert import common_classes

    class_names = common_classes(splits)
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        (tmp / "class_map.txt").write_text(
            "".join(f"{name}\t{i}\n" for i, name in enumerate([BACKGROUND, *class_names])), encoding="utf-8"
        )
        for split, dataset in splits.items():
            image_lines, roi_lines = [], []
            names = unique_names([i.path for i in dataset.images])
            for seq, (image, name) in enumerate(zip(dataset.images, names, strict=True)):
                place_image(image.path, tmp / split / name)
                image_lines.append(f"{seq}\t{split}/{name}\t0\n")
                values = [
                    f" {number(b[0])} {number(b[1])} {number(b[2])} {number(b[3])} {int(label) + 1}"
                    for b, label, crowd in zip(image.boxes, image.labels, image.iscrowd, strict=True)
                    if not crowd
                ]
                roi_lines.append(f"{seq} {STREAM}{''.join(values)}\n")
            (tmp / f"{split}_img_file.txt").write_text("".join(image_lines), encoding="utf-8")
            (tmp / f"{split}_roi_file.txt").write_text("".join(roi_lines), encoding="utf-8")
    return out
