"""Class-folder trees: ``root/<class>/<file>`` (torchvision ``ImageFolder`` convention).

Class names are the folder names sorted alphabetically, so the same tree always yields the same
class indexes. Files nested deeper inside a class folder belong to that class. Files that are not
images (by suffix) are not decoded; they are reported in ``LabeledImages.skipped`` rather than
silently ignored (hidden files such as ``.DS_Store`` excepted).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from amlvision.data.collection import LabeledImages

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".ppm", ".pgm"})


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _subdirs(root: Path) -> list[str]:
    with os.scandir(root) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def _walk_files(folder: Path) -> list[str]:
    """All non-hidden files below ``folder`` as sorted relative POSIX paths."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = os.path.relpath(dirpath, folder)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        found.extend(prefix + f for f in filenames if not f.startswith("."))
    return sorted(found)


def class_folder_names(root: Path) -> list[str]:
    """Sorted names of the class folders of ``root`` (sub-folders holding at least one image)."""
    names = []
    for name in _subdirs(root):
        if any(is_image_name(f) for f in _walk_files(root / name)):
            names.append(name)
    return names


def is_class_tree(root: Path) -> bool:
    """True when ``root`` has sub-folders with image files in them."""
    for name in _subdirs(root):
        for _dirpath, _dirs, files in os.walk(root / name):
            if any(is_image_name(f) for f in files):
                return True
    return False


def read_class_tree(root: str | Path, class_names: list[str] | None = None, *, skip_bad: bool = False) -> LabeledImages:
    """Read ``root/<class>/<file>``; ``class_names`` fixes the index order (e.g. shared by train and test).

    A class folder that is not in ``class_names`` is an error (or, with ``skip_bad``, skipped and reported).
    """
    root = Path(root)
    present = class_folder_names(root)
    names = sorted(present) if class_names is None else list(class_names)
    index = {name: i for i, name in enumerate(names)}
    paths: list[Path] = []
    labels: list[int] = []
    skipped: list[tuple[str, str]] = []
    with os.scandir(root) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_file() and not entry.name.startswith("."):
                skipped.append((str(root / entry.name), "file is not inside a class folder"))
    for name in _subdirs(root):
        files = _walk_files(root / name)
        if name not in index:
            if not any(is_image_name(f) for f in files):
                continue
            reason = f"class folder {name!r} is not one of the known classes {names}"
            if not skip_bad:
                raise ValueError(f"{root / name}: {reason}")
            skipped.extend((str(root / name / f), reason) for f in files)
            continue
        for rel in files:
            path = root / name / rel
            if is_image_name(rel):
                paths.append(path)
                labels.append(index[name])
            else:
                skipped.append((str(path), "not an image file (by suffix)"))
    return LabeledImages(
        class_names=names,
        labels=np.asarray(labels, dtype=np.int64),
        paths=paths,
        skipped=skipped,
        origin=str(root),
    )
