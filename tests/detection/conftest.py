"""coco-tiny (real COCO 2017 images and annotations) and the VOC/CNTK/YOLO layouts derived from it.

The derived layouts are written once per session by this project's own writers; the readers are
also checked on small hand-written files in each format's test module, independently of the writers.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from amlvision.detection.convert import FORMATS, pack_detection, read_detection_splits


@pytest.fixture(scope="session")
def coco_tiny(shared_data: Path) -> Path:
    root = shared_data / "coco-tiny"
    if not (root / "annotations" / "instances_val2017.json").is_file():
        pytest.fail(f"{root} lacks annotations/instances_val2017.json")
    return root


@pytest.fixture(scope="session")
def coco_tiny_splits(coco_tiny: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # coco-tiny has no invalid box: a warning here is a reader bug
        return read_detection_splits(coco_tiny)


@pytest.fixture(scope="session")
def derived(coco_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """coco-tiny packed into every format: ``{format: folder}``."""
    root = tmp_path_factory.mktemp("coco-tiny-derived")
    return {fmt: pack_detection(coco_tiny, fmt, root / fmt).out for fmt in FORMATS}
