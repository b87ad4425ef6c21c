"""Locate and extract the real data sets in ``../shared/data`` for tests and benchmarks.

Extraction is cached (``AMLVISION_CACHE``, default ``/tmp/amlvision-cache``) and atomic:
files are extracted into a temporary folder that is renamed into place only when complete,
so an interrupted extraction never looks finished and parallel test runs do not collide.
"""

from __future__ import annotations

import os
import tarfile
from collections import defaultdict
from pathlib import Path

from amlvision.formats.atomic import atomic_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("AMLVISION_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
CACHE = Path(os.environ.get("AMLVISION_CACHE", "/tmp/amlvision-cache"))
CIFAR10_PNG_TAR = SHARED_DATA / "cifar10-png.tar.gz"


def _extract_members(archive: Path, dest: Path, keep) -> Path:
    """Extract members of ``archive`` for which ``keep(member_name)`` is true into ``dest``."""
    if dest.is_dir():
        return dest
    if not archive.is_file():
        raise FileNotFoundError(f"{archive} not found; set AMLVISION_SHARED_DATA to the shared data folder")
    with atomic_dir(dest, keep_existing=True) as tmp, tarfile.open(archive) as tar:  # keeps a racing copy
        for member in tar:
            if member.isfile() and keep(member.name):
                tar.extract(member, tmp, filter="data")
    return dest


def cifar10_png_subset(train_per_class: int = 150, test_per_class: int = 50) -> Path:
    """The first N train and M test PNGs of each class (in archive order, which is sorted)."""
    limits = {"train": train_per_class, "test": test_per_class}
    counts: dict[tuple[str, str], int] = defaultdict(int)

    def keep(name: str) -> bool:
        parts = name.split("/")
        if len(parts) != 3 or parts[0] not in limits:
            return False
        key = (parts[0], parts[1])
        if counts[key] >= limits[parts[0]]:
            return False
        counts[key] += 1
        return True

    return _extract_members(CIFAR10_PNG_TAR, CACHE / f"cifar10-png-{train_per_class}-{test_per_class}", keep)


def cifar10_png_full() -> Path:
    """All 60,000 CIFAR-10 PNGs as ``root/{train,test}/<class>/<file>.png`` (for benchmarks)."""
    return _extract_members(CIFAR10_PNG_TAR, CACHE / "cifar10-png-full", lambda name: True)


def kaggle_sample_dir() -> Path:
    """The Kaggle-layout sample (read-only in shared data; use it in place)."""
    return SHARED_DATA / "cifar10-kaggle-sample"
