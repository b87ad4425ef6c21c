"""A real training run end to end: outputs per docs/CONTRACTS.md, metrics scikit-learn confirms, ONNX = PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

from amlvision.inference import Predictor
from amlvision.training.export import ExportMismatch, verify_onnx
from amlvision.training.models import FlipTTA, build_model

from .helpers import predictions

OUTPUT_FILES = (
    "model.onnx",
    "labels.json",
    "preprocess.json",
    "model.pt",
    "metrics.json",
    "confusion_matrix.png",
    "classification_report.txt",
    "mistakes.png",
    "confusion_matrix.json",
    "predictions.npz",
    "config.yaml",
    "checkpoint.pt",
)
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def test_outputs_are_complete(fast_run: Path) -> None:
    missing = [name for name in OUTPUT_FILES if not (fast_run / name).is_file()]
    assert not missing
    for png in ("confusion_matrix.png", "mistakes.png"):
        with Image.open(fast_run / png) as img:
            assert img.format == "PNG" and img.width > 300
    assert json.loads((fast_run / "labels.json").read_text()) == CIFAR_CLASSES
    pre = json.loads((fast_run / "preprocess.json").read_text())
    assert (pre["height"], pre["width"], pre["channels"], pre["channel_order"]) == (32, 32, 3, "RGB")
    assert all(s > 1 for s in pre["std"]) and all(50 < m < 200 for m in pre["mean"])  # 0-255 units, from the data


def test_trains_above_chance_on_real_cifar(fast_run: Path) -> None:
    metrics = json.loads((fast_run / "metrics.json").read_text())
    assert metrics["heldout"] == "test" and metrics["num_samples"] == 500
    assert metrics["accuracy"] > 0.22, metrics["accuracy"]  # chance is 0.10
    assert len(metrics["history"]) == 2
    assert metrics["history"][-1]["loss"] < metrics["history"][0]["loss"]


def test_metrics_files_agree_with_sklearn_on_saved_predictions(fast_run: Path) -> None:
    labels, probs = predictions(fast_run)
    predicted = probs.argmax(1)
    metrics = json.loads((fast_run / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(accuracy_score(labels, predicted))
    assert metrics["confusion_matrix"]["matrix"] == confusion_matrix(labels, predicted, labels=range(10)).tolist()
    assert json.loads((fast_run / "confusion_matrix.json").read_text())["class_labels"] == CIFAR_CLASSES
    report = classification_report(
        labels, predicted, labels=range(10), target_names=CIFAR_CLASSES, output_dict=True, zero_division=0
    )
    for name in CIFAR_CLASSES:
        assert metrics["per_class"][name]["f1-score"] == pytest.approx(report[name]["f1-score"])
    text = (fast_run / "classification_report.txt").read_text()
    assert f"{report['macro avg']['f1-score']:.4f}" in text


def test_onnx_equals_pytorch_on_real_images(fast_run: Path, cifar_subset: Path) -> None:
    pre = json.loads((fast_run / "preprocess.json").read_text())
    model = FlipTTA(build_model("fast", 10, (3, 32, 32)))
    model.model.load_state_dict(torch.load(fast_run / "model.pt", weights_only=True))
    model.eval()
    files = sorted((cifar_subset / "test").glob("*/*.png"))[::25]
    predictor = Predictor(fast_run)
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    x = predictor.preprocess.images_to_input(images)
    onnx_logits = predictor.session.run(["logits"], {"input": x})[0]
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(x)).numpy()
    assert np.abs(onnx_logits - torch_logits).max() <= 1e-4 + 1e-4 * np.abs(torch_logits).max()
    mean = np.array(pre["mean"], dtype=np.float32).reshape(1, 3, 1, 1)
    assert np.allclose(
        x, (np.stack(images).transpose(0, 3, 1, 2) - mean) / np.array(pre["std"]).reshape(1, 3, 1, 1), atol=1e-4
    )
    graph = onnx.load(str(fast_run / "model.onnx")).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch axis
    metrics = json.loads((fast_run / "metrics.json").read_text())
    assert metrics["onnx_check"]["max_abs_diff"] <= metrics["onnx_check"]["tolerance"]


def test_export_check_fails_loudly_when_onnx_differs(fast_run: Path) -> None:
    other = FlipTTA(build_model("fast", 10, (3, 32, 32))).eval()
    other.model.init_whitening(torch.randn(8, 3, 32, 32))
    with pytest.raises(ExportMismatch, match="differ from PyTorch"):
        verify_onnx(other, fast_run / "model.onnx", torch.randn(4, 3, 32, 32))


def test_evaluate_command_reproduces_training_metrics(
    fast_run: Path, cifar_subset: Path, tmp_path: Path, capsys
) -> None:
    from amlvision.cli import main

    assert main(["evaluate", str(fast_run), str(cifar_subset), "--out", str(tmp_path)]) == 0
    assert '"accuracy"' in capsys.readouterr().out
    again = json.loads((tmp_path / "metrics.json").read_text())
    trained = json.loads((fast_run / "metrics.json").read_text())
    assert again["num_samples"] == 500 and again["split"] == "test"
    assert abs(again["accuracy"] - trained["accuracy"]) <= 1 / 500  # ONNX vs PyTorch: at most a tie flips
    for name in ("confusion_matrix.png", "mistakes.png", "classification_report.txt"):
        assert (tmp_path / name).is_file()


def test_train_py_rejects_bad_config(tmp_path: Path) -> None:
    from amlvision.training.loop import main

    bad = tmp_path / "train.yaml"
    bad.write_text("epochz: 3\n")
    assert main(["--config", str(bad)]) == 2
