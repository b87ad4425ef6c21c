"""Fixtures for the COCO-as-classification tests: coco-tiny's raw JSON, read without amlvision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def coco_tiny(shared_data: Path) -> Path:
    root = shared_data / "coco-tiny"
    if not (root / "annotations" / "instances_train2017.json").is_file():
        pytest.fail(f"{root}: coco-tiny is missing from the shared data")
    return root


@pytest.fixture(scope="session")
def raw_coco(coco_tiny: Path) -> dict[str, dict]:
    """{'train': json, 'val': json} straight from the files."""
    return {
        split: json.loads((coco_tiny / "annotations" / f"instances_{split}2017.json").read_text())
        for split in ("train", "val")
    }
