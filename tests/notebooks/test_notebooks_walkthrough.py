"""notebooks/cifar10_walkthrough.ipynb runs end to end on real data, and shows what it promises.

The notebook is executed in a kernel running this test's Python (the project's venv) with small
injected parameters; any failing cell fails the test. The assertions then look at the executed
notebook's real outputs: pictures were drawn, tables were shown, the server answered.
"""

from __future__ import annotations

import base64
import io
import re
import sys
from pathlib import Path

import nbformat
import pytest
from PIL import Image

from amlvision.testing import notebooks

ROOT = Path(__file__).resolve().parents[2]
WALKTHROUGH = ROOT / "notebooks" / "cifar10_walkthrough.ipynb"
# The test suite's sizes: the shared cifar_subset cache (150 train / 50 test per class), one epoch of
# CNTK's small ConvNet (the default `fast` model costs ten times more per image).
TEST_PARAMETERS = {
    "TRAIN_PER_CLASS": 150,
    "TEST_PER_CLASS": 50,
    "EPOCHS": 1,
    "MODEL": "convnet",
    "SAMPLES_PER_CLASS": 4,
}
CELL_TIMEOUT = 300  # seconds per cell; training, the longest, takes about 10 s on 2 idle cores


@pytest.fixture(scope="module")
def executed(cifar_subset: Path, kaggle_sample: Path, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("walkthrough")
    nb = notebooks.execute(WALKTHROUGH, {**TEST_PARAMETERS, "WORK": str(work)}, cell_timeout=CELL_TIMEOUT)
    return notebooks.cells_by_tag(nb), work


def _pngs(cell) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(data))) for data in notebooks.outputs_of_type(cell, "image/png")]


def test_committed_notebooks_have_no_outputs():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert notebooks.cells_with_outputs(nb) == [], f"{path.name}: clear outputs before committing (README)"


def test_runs_in_this_python(executed):
    cells, _ = executed
    assert cells["injected-parameters"]  # the test's sizes were injected after the parameters cell
    assert f"at {sys.executable}" in notebooks.text_output(cells["setup"])


def test_part1_data_inspect_and_sample_grid(executed):
    cells, _ = executed
    assert "1.png,frog" in notebooks.text_output(cells["kaggle-files"])
    inspect = notebooks.text_output(cells["inspect"])
    assert "[train] 200 images" in inspect and "frog        18" in inspect and "unreadable files: 0" in inspect
    (grid,) = _pngs(cells["sample-grid"])
    assert grid.width >= 300 and grid.height >= 600  # ten class rows
    counts = notebooks.text_output(cells["cifar-counts"])
    assert "airplane" in counts and "150" in counts and "50" in counts


def test_part2_ctf_written_read_back_and_sequences(executed):
    cells, work = executed
    line = notebooks.text_output(cells["ctf-line"])
    assert "Test_cntk_text.txt: 500 lines" in line
    assert re.search(r"^\|labels( [01]){10} \|features \d+ \d+", line, re.M)
    assert "first line = image 0 flattened (C, H, W): True" in line
    readback = notebooks.text_output(cells["ctf-readback"])
    assert "features (16, 3, 32, 32) torch.float32" in readback
    assert "read back equals the images written: True" in readback
    assert len(_pngs(cells["ctf-readback"])) == 1
    assert "0 |w " in notebooks.text_output(cells["ctf-sequences-file"])
    table = notebooks.outputs_of_type(cells["ctf-sequences"], "text/html")
    assert table and "show flights from boston to denver" in table[0] and "ground" in table[0]


def test_part3_map_mean_and_every_transform(executed):
    cells, _ = executed
    text = notebooks.text_output(cells["map-file"])
    assert re.search(r"train/airplane/\S+\.png\t0", text) and "<MeanImg" in text
    assert "train_map.txt: 1500 images" in text
    assert "mean image (32, 32, 3)" in notebooks.text_output(cells["mean-image"])
    for tag in ("mean-image", "transform-crops", "transform-others", "image-source"):
        assert len(_pngs(cells[tag])) == 1, tag
    crops, others = _pngs(cells["transform-crops"])[0], _pngs(cells["transform-others"])[0]
    assert crops.width > 1000  # 1 before + 10 multiview views per row
    assert others.height > 600  # six transform rows


def test_part4_training_with_run_logging(executed):
    cells, work = executed
    log = notebooks.text_output(cells["train"])
    assert re.search(r"epoch 1/1 loss [\d.]+ acc [\d.]+ val_loss", log)
    assert re.search(r"test accuracy [\d.]+% on 500 images", log)
    run_log = notebooks.text_output(cells["run-log"])
    # one epoch's metrics plus the final ones, the parameters, and the Azure ML confusion matrix
    assert "val_accuracy" in run_log and "'metrics': 2" in run_log and "'params': 1" in run_log
    assert "'confusion_matrix': 1" in run_log
    assert len(_pngs(cells["run-curves"])) == 1
    assert (work / "outputs" / "model.onnx").is_file()


def test_part5_onnx_predictions_and_the_server_answered(executed):
    cells, _ = executed
    predict = cells["predict"]
    assert len(_pngs(predict)) == 1
    assert "predicted" in notebooks.outputs_of_type(predict, "text/html")[0]
    served = notebooks.text_output(cells["serve-request"])
    assert "HTTP 200" in served
    table = notebooks.outputs_of_type(cells["serve-request"], "text/html")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)  # data rows (the header row has a style)
    assert len(rows) == 4
    for row in rows:  # the server's label equals the in-process Predictor's
        cells_text = re.findall(r"<td>(.*?)</td>", row, re.S)
        assert cells_text[1] == cells_text[3], row
    assert "still answering: False" in notebooks.text_output(cells["server-stopped"])


def test_part6_confusion_matrix_report_and_mistakes(executed):
    cells, work = executed
    evaluated = notebooks.text_output(cells["confusion-matrix"])
    assert "on 500 test images" in evaluated
    # ONNX Runtime over the PNG files reproduces train.py's PyTorch figure on the same test split.
    trained = re.search(r"test accuracy ([\d.]+)%", notebooks.text_output(cells["train"])).group(1)
    assert f"accuracy {trained}%" in evaluated
    (matrix,) = _pngs(cells["confusion-matrix"])
    assert matrix.size == Image.open(work / "evaluation" / "confusion_matrix.png").size
    report = notebooks.text_output(cells["report"])
    assert "precision" in report and "macro avg" in report
    assert "<table" in notebooks.outputs_of_type(cells["report"], "text/html")[0]
    assert len(_pngs(cells["mistakes"])) == 1
