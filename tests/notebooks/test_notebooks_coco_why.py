"""notebooks/coco_why.ipynb runs end to end on coco-tiny with small parameters and shows what it promises."""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from amlvision.testing import notebooks

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "coco_why.ipynb"
CELL_TIMEOUT = 600  # seconds per cell; the training cell, the longest, takes about a minute on 2 idle cores


@pytest.fixture(scope="module")
def executed(shared_data: Path, small_cifar: Path, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("coco-why")
    parameters = {
        "DATA": str(shared_data / "coco-tiny"),
        "CONTRAST": str(small_cifar),
        "MODES": ["dominant", "multilabel"],
        "SIZES": [32],
        "EPOCHS": 1,
        "WORK": str(work),
    }
    nb = notebooks.execute(NOTEBOOK, parameters, cell_timeout=CELL_TIMEOUT)
    return notebooks.cells_by_tag(nb), work


def _pngs(cell) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(data))) for data in notebooks.outputs_of_type(cell, "image/png")]


def test_coco_why_notebook_shows_boxes_derivations_statistics_and_report(executed):
    cells, work = executed
    assert f"at {sys.executable}" in notebooks.text_output(cells["setup"])
    assert "80 validation images, 815 boxes, 80 categories" in notebooks.text_output(cells["read"])
    (boxes,) = _pngs(cells["boxes"])
    assert boxes.width >= 400
    derived = notebooks.text_output(cells["derived"])
    assert "dominant: 6 samples from 6 images" in derived and "multilabel: 6 samples" in derived
    assert len(_pngs(cells["derived"])) == 2  # one grid per mode the test trains
    stats = "".join(notebooks.outputs_of_type(cells["stats"], "text/markdown"))
    assert "| images | 160 | 600 |" in stats and "images with >= 2 categories" in stats
    report = json.loads((work / "why" / "why.json").read_text())
    assert [r["mode"] for r in report["runs"]] == ["dominant", "multilabel"]
    assert report["conclusions"] and "Conclusions" in "".join(notebooks.outputs_of_type(cells["why"], "text/markdown"))
    assert len(_pngs(cells["why-plots"])) == 3
