"""train.py --task detection on real COCO 2017 images (coco-tiny): the loop learns, logs, resumes and loads weights.

The overfit run trains a randomly initialised fasterrcnn_mobilenet_v3_large_320_fpn on two coco-tiny
training images (a bear; two giraffes) and evaluates on the same two images: the training loss must
fall and COCOeval's AP50 on those images must rise from the untrained model's (computed here with
the same seed) to well above it. Small inputs (min_size 160) keep it affordable on 2 shared cores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from amlvision.detection.data import DetectionDataset, resolve_detection_data
from amlvision.detection.evaluation import coco_evaluate, predict
from amlvision.detection.models import build_detector
from amlvision.detection.training import CPU_DETECTOR_OPTIONS, LOSS_NAMES, recalibrate_batchnorm
from amlvision.testing.detection import COCO_TINY, coco_subset
from amlvision.training.config import parse_config
from amlvision.training.loop import train
from amlvision.training.tracking import metric_history, read_local_log

ROOT = Path(__file__).resolve().parents[2]
MODEL = "fasterrcnn_mobilenet_v3_large_320_fpn"
SIZES = ("--min-size", "160", "--max-size", "267")
OVERFIT_EPOCHS = 22  # one step of two images per epoch
OVERFIT_OPTIONS = ("--lr-schedule", "constant", "--seed", "0", "--lr", "0.02")


def run_args(data: Path, outputs: Path, *extra: str) -> list[str]:
    return [
        "--data",
        f"coco:{data}",
        "--outputs",
        str(outputs),
        *SIZES,
        "--flip",
        "false",
        "--augment",
        "false",
        "--threads",
        "2",
        "--progress",
        "log",
        *extra,
    ]


@pytest.fixture(scope="module")
def few(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (COCO_TINY / "train2017").is_dir():
        pytest.fail(f"{COCO_TINY} is missing (shared data)")
    return coco_subset(tmp_path_factory.mktemp("few") / "coco")


@pytest.fixture(scope="module")
def overfit_run(few: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    outputs = tmp_path_factory.mktemp("overfit") / "out"
    cfg = parse_config(run_args(few, outputs, "--epochs", str(OVERFIT_EPOCHS), *OVERFIT_OPTIONS))
    assert cfg.task == "detection" and cfg.model == MODEL  # inferred from coco: data
    train(cfg)
    return outputs


def test_overfit_loss_falls_and_ap50_rises_well_above_the_untrained_model(few: Path, overfit_run: Path):
    metrics = json.loads((overfit_run / "metrics.json").read_text())
    history = metrics["history"]
    assert len(history) == OVERFIT_EPOCHS
    first, last = history[0], history[-1]
    assert last["loss"] < 0.6 * first["loss"], [round(r["loss"], 3) for r in history]
    assert last["loss_classifier"] < first["loss_classifier"] and last["loss_objectness"] < first["loss_objectness"]

    # the untrained model: same seed, same construction as the run's
    data = resolve_detection_data(f"coco:{few}", 0.0, 0)
    torch.manual_seed(0)
    untrained = build_detector(MODEL, len(data.class_names), min_size=160, max_size=267, **CPU_DETECTOR_OPTIONS)
    recalibrate_batchnorm(untrained, DetectionDataset(data.train), 2)  # evaluated as the run evaluates
    start = coco_evaluate(data.heldout, predict(untrained, DetectionDataset(data.heldout), torch.device("cpu")))
    # chance finds some of these large boxes at IoU 0.5; a fit finds them all, and places them well
    assert metrics["AP50"] >= 0.7 and metrics["AP50"] > start["AP50"] + 0.3, (start["AP50"], metrics["AP50"])
    assert metrics["AP"] > start["AP"] + 0.2, (start["AP"], metrics["AP"])


def test_outputs_metrics_and_run_log(overfit_run: Path):
    metrics = json.loads((overfit_run / "metrics.json").read_text())
    for key in ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR100"):
        assert -1.0 <= metrics[key] <= 1.0, key
    assert set(metrics["per_class"]) == {"bear", "giraffe"}
    assert metrics["per_class"]["giraffe"]["boxes"] == 2
    assert metrics["task"] == "detection" and metrics["min_size"] == 160 and metrics["max_size"] == 267
    assert "Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ]" in metrics["coco_eval"]
    for name in ("pr_curves.png", "detections.png", "coco_eval.txt", "model.pt", "config.yaml", "checkpoint.pt"):
        assert (overfit_run / name).is_file(), name
    # the model directory, written by amlvision.detection.export (ONNX checked against PyTorch on two sizes)
    assert metrics["export"]["exported"] and len({tuple(s) for s in metrics["export"]["check_images"]}) == 2
    assert json.loads((overfit_run / "labels.json").read_text()) == ["bear", "giraffe"]
    preprocess = json.loads((overfit_run / "preprocess.json").read_text())
    assert (preprocess["task"], preprocess["min_size"], preprocess["max_size"]) == ("detection", 160, 267)
    assert (overfit_run / "model.onnx").stat().st_size > 1_000_000
    records = read_local_log(overfit_run)
    history = metric_history(records)
    for name in ("loss", *LOSS_NAMES, "val_AP", "val_AP50", "lr"):
        assert len([v for v in history[name] if v is not None]) == OVERFIT_EPOCHS, name
    assert history["final_AP50"][-1] == pytest.approx(metrics["AP50"])
    tables = [r for r in records if r["kind"] == "table" and r["name"] == "per_class_ap"]
    assert tables[0]["values"]["class"] == ["bear", "giraffe"]
    images = {r["name"] for r in records if r["kind"] == "image"}
    assert {"pr_curves", "detections"} <= images
    assert [r for r in records if r["kind"] == "tags"][0]["values"]["task"] == "detection"


def test_weights_flag_starts_from_a_state_dict_the_test_writes(few: Path, tmp_path: Path):
    """--weights FILE: one step at a negligible lr ends where the file's weights began (random init would not)."""
    torch.manual_seed(123)
    written = build_detector(MODEL, 2).state_dict()
    weights = tmp_path / "weights.pth"
    torch.save(written, weights)
    outputs = tmp_path / "out"
    metrics = train(parse_config(run_args(few, outputs, "--epochs", "1", "--lr", "1e-9", "--weights", str(weights))))
    assert yaml.safe_load((outputs / "config.yaml").read_text())["weights"] == str(weights)
    got = torch.load(outputs / "model.pt", weights_only=True)
    compared = [k for k in written if k in got and written[k].is_floating_point()]
    assert len(compared) > 200 and "roi_heads.box_predictor.cls_score.weight" in compared
    worst = max(float((got[k] - written[k]).abs().max()) for k in compared)
    assert worst < 1e-5, worst
    assert metrics["epochs"] == 1


def _train_subprocess(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )


def test_sigterm_then_resume_ends_with_the_uninterrupted_weights(few: Path, tmp_path: Path):
    extra = ("--epochs", "3", "--lr", "0.01", "--seed", "4")
    reference = tmp_path / "reference"
    train(parse_config(run_args(few, reference, *extra)))

    outputs = tmp_path / "resumed"
    args = run_args(few, outputs, *extra)
    proc = _train_subprocess(args)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "epoch 1/3 step 1/1" in line:
            proc.send_signal(signal.SIGTERM)
            break
    rest, _ = proc.communicate(timeout=600)
    output = "".join(lines) + rest
    assert proc.returncode == 143, output
    assert "continue with --resume" in output and "Traceback" not in output
    ckpt = torch.load(outputs / "checkpoint.pt", weights_only=False)
    assert ckpt["global_step"] < 3 and not (outputs / "metrics.json").exists()

    train(parse_config([*args, "--resume"]))
    ref, got = (torch.load(p / "model.pt", weights_only=True) for p in (reference, outputs))
    assert ref.keys() == got.keys()
    assert all(torch.equal(ref[k], got[k]) for k in ref), "resumed weights differ from the uninterrupted run's"
    ref_m, got_m = (json.loads((p / "metrics.json").read_text()) for p in (reference, outputs))
    assert got_m["AP"] == ref_m["AP"] and [r["loss"] for r in got_m["history"]] == [r["loss"] for r in ref_m["history"]]

    changed = [*args[: args.index("--lr") + 1], "0.05", *args[args.index("--lr") + 2 :], "--resume"]
    with pytest.raises(ValueError, match="cannot resume, the configuration changed.*lr"):
        train(parse_config(changed))


def test_task_inference_and_errors(few: Path, tmp_path: Path):
    data = f"coco:{few}"
    assert parse_config(["--data", data]).model == MODEL
    assert parse_config(["--data", str(few)]).task == "detection"  # a COCO-layout folder
    assert parse_config(["--data", "cifar10"]).task == "classification"
    with pytest.raises(ValueError, match="needs a detector model"):
        parse_config(["--data", data, "--model", "fast"])
    with pytest.raises(ValueError, match="is a detector"):
        parse_config(["--data", "cifar10", "--task", "classification", "--model", MODEL])
