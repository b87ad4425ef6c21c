"""amlvision.model_dir: the model directory contract (names per task, the versioned preprocess.json schema),
and an old model directory (preprocess.json without version/task) served through the real scoring path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from amlvision import model_dir as contract
from amlvision.inference import Predictor
from amlvision.model_dir import ModelDirError, Preprocess
from amlvision.serving.limits import Limits
from amlvision.serving.scoring import ScoringService
from amlvision.tasks import get_task
from tests.serving.conftest import assert_same_predictions, b64


def test_a_written_model_directory_carries_version_task_and_the_agreed_names(model_dir: Path) -> None:
    raw = json.loads((model_dir / contract.PREPROCESS_FILE).read_text())
    assert (raw["version"], raw["task"], raw["resize"]) == (2, "classification", "bilinear")
    predictor = Predictor(model_dir, threads=1)
    assert [i.name for i in predictor.session.get_inputs()] == ["input"]
    assert [o.name for o in predictor.session.get_outputs()] == ["logits"]
    assert predictor.task is get_task("classification")


def test_an_old_preprocess_json_without_version_or_task_still_serves(
    model_dir: Path, test_files: list[Path], predict_answer: list[dict], tmp_path: Path
) -> None:
    old = tmp_path / "old-model"
    shutil.copytree(model_dir, old)
    raw = json.loads((old / contract.PREPROCESS_FILE).read_text())
    # exactly what train.py wrote before tasks existed
    v1 = {
        k: raw[k] for k in ("height", "width", "channels", "channel_order", "layout", "dtype", "resize", "mean", "std")
    }
    (old / contract.PREPROCESS_FILE).write_text(json.dumps(v1))
    service = ScoringService.load(old, Limits(max_images=64, max_image_bytes=200_000, max_body_bytes=4_000_000))
    assert (service.predictor.preprocess.version, service.predictor.preprocess.task) == (1, "classification")
    answer = service.score(
        json.dumps({"images": [b64(p.read_bytes()) for p in test_files]}).encode(), "application/json"
    )
    assert_same_predictions(answer["predictions"], predict_answer)


def test_signatures_per_task_are_the_agreed_interfaces() -> None:
    assert (contract.signature("classification").input, contract.signature("classification").outputs) == (
        "input",
        ("logits",),
    )
    assert contract.signature("multilabel") == contract.signature("classification")
    assert (contract.signature("detection").input, contract.signature("detection").outputs) == (
        "images",
        ("boxes", "labels", "scores"),
    )
    with pytest.raises(ModelDirError, match="task must be one of"):
        contract.signature("segmentation")
    with pytest.raises(ModelDirError, match=r"model.onnx: needs input 'images' .*missing \['images', 'scores'\]"):
        contract.signature("detection").check(["input"], ["boxes", "labels"], "model.onnx")


@pytest.mark.parametrize(
    "values",
    [
        {"channels": 3, "height": 32, "width": 32, "mean": [1, 2, 3], "std": [4, 5, 6], "resize": "bicubic"},
        {"task": "multilabel", "channels": 1, "height": 8, "width": 8},
        {"task": "multilabel", "channels": 3, "height": 64, "width": 64, "threshold": 0.3},
        {"task": "detection", "channels": 3, "min_size": 320, "max_size": 640},
    ],
)
def test_preprocess_round_trips_through_its_json(values: dict, tmp_path: Path) -> None:
    written = Preprocess(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    contract.write_model_files(tmp_path, ["a", "b"], written)
    raw = json.loads((tmp_path / contract.PREPROCESS_FILE).read_text())
    assert raw["version"] == contract.PREPROCESS_VERSION and raw["task"] == written.task
    again = Preprocess.load(tmp_path / contract.PREPROCESS_FILE)
    assert again == written
    assert contract.read_labels(tmp_path / contract.LABELS_FILE) == ["a", "b"]
    if written.task == "multilabel":
        assert raw["threshold"] == values.get("threshold", 0.5)
    if written.task == "detection":
        assert "height" not in raw and "mean" not in raw and (raw["min_size"], raw["max_size"]) == (320, 640)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"version": 3, "channels": 3, "height": 1, "width": 1}, "version 3 is not one this amlvision reads"),
        ({"version": 2, "task": "segmentation", "channels": 3, "height": 1, "width": 1}, "task must be one of"),
        ({"task": "multilabel", "channels": 3, "height": 1, "width": 1}, "a version 1 file .* classification"),
        ({"version": 2, "task": "multilabel", "channels": 3, "height": 4, "width": 4, "threshold": 1.5}, "threshold"),
        ({"version": 2, "task": "detection", "channels": 3, "min_size": 320}, "detection needs min_size and max_size"),
        ({"version": 2, "task": "detection", "channels": 3, "min_size": 640, "max_size": 320}, "min_size <= max_size"),
        ({"version": 2, "task": "classification", "channels": 3}, "height and width are required"),
        ({"version": 2, "channels": 3, "height": 4, "width": 4, "resize": "cubic"}, "resize 'cubic' is not one of"),
        ({"version": 2, "channels": 3, "height": 4.5, "width": 4}, "invalid or missing field"),
    ],
)
def test_bad_preprocess_json_names_the_file_and_the_field(raw: dict, message: str, tmp_path: Path) -> None:
    path = tmp_path / "model" / contract.PREPROCESS_FILE
    path.parent.mkdir()
    path.write_text(json.dumps(raw))
    with pytest.raises(ModelDirError, match=f"^{path}: .*{message}"):
        Preprocess.load(path)


def test_missing_files_and_unknown_tasks_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / contract.LABELS_FILE).write_text('["a"]')
    with pytest.raises(FileNotFoundError, match="not a model directory, missing model.onnx, preprocess.json"):
        contract.read_model_dir(tmp_path)
    with pytest.raises(ValueError, match="task must be one of"):
        get_task("segmentation")


def test_interpolation_names_map_to_resize_filters() -> None:
    assert [contract.resize_of_interpolation(n) for n in ("linear", "cubic", "nearest", "lanczos")] == [
        "bilinear",
        "bicubic",
        "nearest",
        "lanczos",
    ]
    with pytest.raises(ValueError, match="interpolation must be one of"):
        contract.resize_of_interpolation("area")
