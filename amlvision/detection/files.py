"""File helpers the detection readers and writers share: image sizes, atomic output folders, image copies.

``atomic_dir`` builds an output in a ``.NAME.partial-*`` folder beside it and renames it into place
when complete, the same way ``amlvision pack`` does for classification outputs. issue-9d moves one
such helper into ``amlvision/formats/atomic.py``; it is used when present, the local copy otherwise
(delete the copy once both branches are merged).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

try:
    from amlvision.data.partial import make_partial
except ImportError:  # issue-9d moves it to amlvision.formats.atomic
    from amlvision.formats.atomic import make_partial

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


@contextmanager
def _local_atomic_dir(out: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``out`` only when the block finishes without error."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists (pass overwrite=True / --overwrite to replace it)")
    tmp = make_partial(out)
    try:
        yield tmp
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


try:  # issue-9d's shared helper (same signature), once merged; then the local one above can go
    from amlvision.formats.atomic import atomic_dir
except ImportError:
    atomic_dir = _local_atomic_dir


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
