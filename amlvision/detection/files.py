"""File helpers the detection readers and writers share: image sizes, image copies, number text.

Writers build their output with the project's one ``atomic_dir`` (``amlvision.formats.atomic``),
re-exported here: a ``.NAME.partial-*`` folder renamed into place when complete.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from amlvision.formats.atomic import atomic_dir

__all__ = ["IMAGE_SUFFIXES", "atomic_dir", "image_size", "images_by_stem", "number", "place_image", "unique_names"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image header only (PIL reads no pixels for this)."""
    with Image.open(path) as image:
        return image.size


def images_by_stem(folder: Path) -> dict[str, Path]:
    """Image files of ``folder`` (not recursive) keyed by file stem; the first suffix in sort order wins."""
    found: dict[str, Path] = {}
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                found.setdefault(path.stem, path)
    return found


def place_image(src: Path, dest: Path) -> None:
    """Hard-link ``src`` to ``dest`` (no copy on the same file system), else copy it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def unique_names(paths: list[Path]) -> list[str]:
    """File names for ``paths`` inside one folder: the original name, with ``_N`` added where two stems
    collide (label files are matched to images by stem, so stems must be unique, not only names)."""
    used: set[str] = set()
    names = []
    for path in paths:
        stem, count = path.stem, 0
        while stem in used:
            count += 1
            stem = f"{path.stem}_{count}"
        used.add(stem)
        names.append(f"{stem}{path.suffix}")
    return names


def number(value: float) -> str:
    """The shortest text that reads back to the same float32 (``212.6``, not ``212.60000610351562``)."""
    return np.format_float_positional(np.float32(value), unique=True, trim="-")
