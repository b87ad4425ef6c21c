"""Read and write YOLO txt labels: one ``class cx cy w h`` line per box, normalised to the image size.

Layouts read: Ultralytics' ``images/<split>/`` + ``labels/<split>/`` (class names in ``data.yaml``
``names``), the folders ``data.yaml``'s ``train`` / ``val`` / ``test`` name (Roboflow's
``train/images`` + ``train/labels``; labels are found as Ultralytics does, by replacing the last
``images`` folder of the path with ``labels``), ``images/`` + ``labels/`` without split folders, and
Darknet's images and ``.txt`` files side by side (``obj.names`` / ``classes.txt``, one name per
line). An image without a label file, or with an empty one, has no boxes. Image sizes come from the
image headers.

Written: ``images/<split>/``, ``labels/<split>/<stem>.txt`` with six decimals (Ultralytics' own
precision: a round trip moves a box edge by at most 1e-6 of the image size), ``data.yaml`` and
``classes.txt``. YOLO has no crowd or difficult flag: crowd boxes are not written and difficult
boxes become ordinary ones. Lines of another length (segmentation polygons) are skipped as invalid.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import yaml

from amlvision.detection.annotations import DetectionSet, ImageBoxes, InvalidBox
from amlvision.detection.checks import WHOLE_FILE, box_problems, clip_boxes, warn_skipped
from amlvision.detection.files import IMAGE_SUFFIXES, atomic_dir, image_size, place_image, unique_names

NAME_FILES = ("data.yaml", "dataset.yaml", "classes.txt", "obj.names")
MAX_LABEL_BYTES = 4 * 1024 * 1024
DEFAULT_SPLIT = "train"


class YoloFormatError(ValueError):
    """The class-names file or the folder layout is unusable; the message names the file and field."""


def read_class_names(path: str | Path) -> list[str]:
    """Class names from ``data.yaml`` (``names``: list or ``{index: name}``) or a one-name-per-line file."""
    path = Path(path)
    if path.suffix in (".yaml", ".yml"):
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise YoloFormatError(f"{path}: not YAML ({exc})") from exc
        names = data.get("names") if isinstance(data, dict) else None
        if isinstance(names, dict):
            if sorted(names) != list(range(len(names))):
                raise YoloFormatError(f"{path}: field 'names' must map 0..{len(names) - 1} to names")
            return [str(names[i]) for i in range(len(names))]
        if not isinstance(names, list):
            raise YoloFormatError(f"{path}: field 'names' must be a list or a mapping of index to name")
        return [str(n) for n in names]
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _names_file(root: Path) -> Path | None:
    return next((root / n for n in NAME_FILES if (root / n).is_file()), None)


def _labels_dir(images_dir: Path) -> Path:
    """Ultralytics' rule: the last ``images`` folder of the path becomes ``labels``; none: side by side."""
    parts = list(images_dir.parts)
    if "images" not in parts:
        return images_dir
    at = len(parts) - 1 - parts[::-1].index("images")
    parts[at] = "labels"
    return Path(*parts)


def _declared_splits(root: Path) -> dict[str, Path]:
    """``train`` / ``val`` / ``test`` image folders that data.yaml names and that exist (Roboflow exports:
    ``train: ../train/images`` with ``train/images`` beside the YAML, which Ultralytics also accepts)."""
    yaml_file = next((root / n for n in NAME_FILES[:2] if (root / n).is_file()), None)
    if yaml_file is None:
        return {}
    try:
        data = yaml.load(yaml_file.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return {}
    found = {}
    for key in ("train", "val", "test"):
        value = data.get(key) if isinstance(data, dict) else None
        if not isinstance(value, str):
            continue
        for candidate in (root / value, root / value[3:] if value.startswith("../") else None):
            if candidate is not None and candidate.is_dir():
                found[key] = candidate
                break
    return found


def _split_folders(root: Path) -> dict[str, tuple[Path, Path]]:
    """``{split: (images folder, labels folder)}``: ``images/<split>/`` folders, else the folders data.yaml
    names, else ``images/`` + ``labels/`` as the one default split, else images and labels side by side."""
    images = root / "images"
    subdirs = sorted(p for p in images.iterdir() if p.is_dir()) if images.is_dir() else []
    if subdirs:
        return {p.name: (p, _labels_dir(p)) for p in subdirs}
    declared = _declared_splits(root)
    if declared:
        return {split: (folder, _labels_dir(folder)) for split, folder in declared.items()}
    if images.is_dir():
        return {DEFAULT_SPLIT: (images, root / "labels")}
    return {DEFAULT_SPLIT: (root, root)}  # Darknet: images and .txt side by side


def yolo_splits(root: str | Path) -> list[str]:
    """The split names of a YOLO folder (see ``_split_folders``)."""
    return list(_split_folders(Path(root)))


def _folders(root: Path, split: str | None) -> tuple[Path, Path]:
    splits = _split_folders(root)
    if split is None and len(splits) == 1:
        return next(iter(splits.values()))
    if split not in splits:
        raise YoloFormatError(f"{root}: no split {split!r} (has {sorted(splits)})")
    return splits[split]


def read_yolo(root: str | Path, split: str | None = None, class_names: list[str] | None = None) -> DetectionSet:
    """Read a YOLO folder (all of it, or one ``split``); class names from ``class_names`` or the names file."""
    root = Path(root)
    if class_names is None:
        names_file = _names_file(root)
        if names_file is None:
            raise YoloFormatError(f"{root}: no class-names file ({', '.join(NAME_FILES)}); pass class_names")
        class_names = read_class_names(names_file)
    images_dir, labels_dir = _folders(root, split)
    invalid: list[InvalidBox] = []
    images = []
    for path in sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
        label_path = labels_dir / f"{path.stem}.txt"
        try:
            width, height = image_size(path)
        except OSError as exc:
            invalid.append(InvalidBox(str(path), WHOLE_FILE, f"image unreadable ({exc})"))
            continue
        rows, labels = [], []
        if label_path.is_file():
            try:
                if label_path.stat().st_size > MAX_LABEL_BYTES:
                    raise ValueError(f"larger than {MAX_LABEL_BYTES} bytes")
                lines = label_path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                invalid.append(InvalidBox(str(label_path), WHOLE_FILE, f"unreadable ({exc})"))
                continue
            skipped: list[InvalidBox] = []
            for k, line in enumerate(ln for ln in lines if ln.strip()):
                source = f"{label_path}: box {k}"
                fields = line.split()
                try:
                    if len(fields) != 5:
                        raise ValueError(f"{len(fields)} fields, expected 'class cx cy w h'")
                    cls, cx, cy, w, h = float(fields[0]), *(float(v) for v in fields[1:])
                except ValueError as exc:
                    skipped.append(InvalidBox(source, k, str(exc)))
                    continue
                if cls != int(cls) or not 0 <= cls < len(class_names):
                    skipped.append(InvalidBox(source, k, f"unknown class {fields[0]} ({len(class_names)} classes)"))
                    continue
                box = [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
                rows.append((k, source, line, box))
                labels.append(int(cls))
            reasons = box_problems(np.array([r[3] for r in rows]), width, height)  # one call per file
            for (k, source, line, _), reason in zip(rows, reasons, strict=True):
                if reason:
                    skipped.append(InvalidBox(source, k, f"{reason} (line {line.strip()!r})"))
            invalid += sorted(skipped, key=lambda item: item.index)
            labels = [label for label, reason in zip(labels, reasons, strict=True) if not reason]
            rows = [row[3] for row, reason in zip(rows, reasons, strict=True) if not reason]
        images.append(
            ImageBoxes(
                path=path,
                width=width,
                height=height,
                boxes=clip_boxes(np.array(rows).reshape(-1, 4), width, height),
                labels=labels,
                image_id=path.stem,
            )
        )
    warn_skipped(invalid)
    return DetectionSet(list(class_names), images, list(range(len(class_names))), invalid, source=str(labels_dir))


def write_yolo(splits: Mapping[str, DetectionSet], out: str | Path, overwrite: bool = False) -> Path:
    """Write ``splits`` in Ultralytics' layout (atomically), with data.yaml and classes.txt."""
    from amlvision.detection.convert import common_classes

    class_names = common_classes(splits)
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for split, dataset in splits.items():
            (tmp / "labels" / split).mkdir(parents=True, exist_ok=True)
            for image, name in zip(dataset.images, unique_names([i.path for i in dataset.images]), strict=True):
                place_image(image.path, tmp / "images" / split / name)
                size = np.array([image.width, image.height], np.float64)
                lines = []
                for box, label, crowd in zip(image.boxes.astype(np.float64), image.labels, image.iscrowd, strict=True):
                    if crowd:
                        continue
                    centre, extent = (box[:2] + box[2:]) / 2 / size, (box[2:] - box[:2]) / size
                    lines.append(f"{int(label)} {centre[0]:.6f} {centre[1]:.6f} {extent[0]:.6f} {extent[1]:.6f}\n")
                (tmp / "labels" / split / f"{Path(name).stem}.txt").write_text("".join(lines), encoding="utf-8")
        # Ultralytics looks for the keys train / val / test; without "path" it resolves them against
        # the YAML's own folder (a relative "path" would be taken from its datasets folder instead)
        keys = {split: next((k for k in ("train", "val", "test") if split.startswith(k)), split) for split in splits}
        if len(set(keys.values())) < len(keys):
            keys = {split: split for split in splits}
        data = {**{keys[s]: f"images/{s}" for s in splits}, "names": dict(enumerate(class_names))}
        (tmp / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        (tmp / "classes.txt").write_text("".join(f"{n}\n" for n in class_names), encoding="utf-8")
    return out
