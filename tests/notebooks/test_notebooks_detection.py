"""notebooks/detection.ipynb runs end to end on coco-tiny images and shows what it promises.

Executed in a kernel on this venv's Python with small injected parameters (a few epochs, small
inputs); the assertions look at the executed notebook's real outputs.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from amlvision.testing import notebooks

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "detection.ipynb"
TEST_PARAMETERS = {"EPOCHS": 4, "MIN_SIZE": 128}
CELL_TIMEOUT = 300


@pytest.fixture(scope="module")
def executed(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("detection-notebook")
    nb = notebooks.execute(NOTEBOOK, {**TEST_PARAMETERS, "WORK": str(work)}, cell_timeout=CELL_TIMEOUT)
    return notebooks.cells_by_tag(nb), work


def _pngs(cell) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(data))) for data in notebooks.outputs_of_type(cell, "image/png")]


def test_detection_notebook_draws_trains_predicts_and_evaluates(executed):
    cells, work = executed
    assert "coco-tiny train2017: 80 images, 705 boxes, 80 classes" in notebooks.text_output(cells["paths"])
    (annotated,) = _pngs(cells["annotations"])
    assert annotated.width > 600
    training = notebooks.text_output(cells["training"])
    assert "loss_classifier" in training and "val_AP50" in training
    assert len([line for line in training.splitlines() if line.strip()[:1].isdigit()]) == 4  # one row per epoch
    (side_by_side,) = _pngs(cells["predictions"])
    assert side_by_side.width >= 600 and side_by_side.height >= 400  # rows of ground truth | predictions
    table = notebooks.text_output(cells["cocoeval"])
    assert "AP50" in table and "AR100" in table and "bear" in table and "giraffe" in table
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]" in table
    listing = notebooks.text_output(cells["outputs"])
    for name in ("metrics.json", "coco_eval.txt", "pr_curves.png", "detections.png", "model.pt"):
        assert name in listing
    assert (work / "outputs" / "metrics.json").is_file()
