"""Each --from-boxes mode trains end to end on coco-tiny, exports ONNX and is served; then `why` reads the runs.

Tiny runs (one epoch at 32x32, in-process): the point is the whole path, not the accuracy.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import requests

from amlvision.cli import main as cli
from amlvision.detection.derive import MODES
from amlvision.inference.decode import decode_file_for_model
from amlvision.inference.preprocess import PreprocessConfig
from amlvision.serving.local import LocalServer
from amlvision.serving.scoring import ScoringService
from amlvision.training.loop import main as train_main


@pytest.fixture(scope="module")
def runs(coco_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("from-boxes")
    out = {}
    for mode in MODES:
        out[mode] = root / mode
        args = ["--data", str(coco_tiny), "--from-boxes", mode, "--epochs", "1", "--batch-size", "32"]
        args += ["--outputs", str(out[mode]), "--threads", "2", "--progress", "log", "--eval-batch-size", "128"]
        if mode == "crops":
            args += ["--box-min-size", "16", "--box-context", "0.1"]
        assert train_main(args) == 0, mode
    return out


def _val_image(coco_tiny: Path) -> Path:
    return sorted((coco_tiny / "val2017").glob("*.jpg"))[0]


@pytest.mark.parametrize("mode", ["dominant", "crops", "context"])
def test_single_label_modes_train_export_and_serve(runs, coco_tiny, mode):
    run = runs[mode]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["onnx_check"]["max_abs_diff"] <= metrics["onnx_check"]["tolerance"]
    labels = json.loads((run / "labels.json").read_text())
    assert len(labels) == 80 and labels[0] == "person"
    expected = {"dominant": 80, "context": 80}.get(mode)
    if expected:
        assert metrics["num_samples"] == expected  # every val image has boxes: one sample each
    else:  # crops: one sample per val box of at least 16 px (not crowd)
        raw = json.loads((coco_tiny / "annotations" / "instances_val2017.json").read_text())
        kept = [a for a in raw["annotations"] if not a["iscrowd"] and min(a["bbox"][2:]) >= 16]
        assert metrics["num_samples"] == len(kept)
    answer = ScoringService.load(run).score(_val_image(coco_tiny).read_bytes(), "image/jpeg")
    top = answer["predictions"][0]
    assert top["label"] in labels and 0 < top["probability"] <= 1
    assert json.loads((run / "preprocess.json").read_text())["task"] == "classification"


def test_multilabel_trains_exports_and_the_server_answers_probabilities_and_labels(runs, coco_tiny):
    run = runs["multilabel"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "multilabel" and metrics["classes_with_positives"] == 80
    for key in ("map_macro", "map_micro", "CP", "CR", "CF1", "OP", "OR", "OF1"):
        assert 0 <= metrics[key] <= 1, key
    saved = np.load(run / "predictions.npz")
    assert saved["targets"].shape == saved["probabilities"].shape == (80, 80)
    preprocess = json.loads((run / "preprocess.json").read_text())
    assert preprocess["task"] == "multilabel" and preprocess["threshold"] == 0.5
    # what the server must answer, computed here with ONNX Runtime and a plain sigmoid
    config = PreprocessConfig.load(run / "preprocess.json")
    image = _val_image(coco_tiny)
    x = config.images_to_input([decode_file_for_model(image, preprocess=config)])
    session = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = 1 / (1 + np.exp(-session.run(["logits"], {"input": x})[0][0].astype(np.float64)))
    labels = json.loads((run / "labels.json").read_text())
    env = {"OMP_NUM_THREADS": "1", "AMLVISION_ORT_THREADS": "1"}
    with LocalServer(run, env=env) as server:
        reply = requests.post(server.score_url, data=image.read_bytes(), headers={"Content-Type": "image/jpeg"})
    assert reply.status_code == 200, reply.text
    answer = reply.json()["predictions"][0]
    got = np.array([answer["probabilities"][name] for name in labels])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    above = [labels[j] for j in np.argsort(-expected, kind="stable") if expected[j] >= 0.5]
    assert answer["labels"] == above and answer["threshold"] == 0.5


def test_why_reads_the_runs_and_counts_errors_that_are_not_errors(runs, coco_tiny, tmp_path):
    out = tmp_path / "why"
    assert cli(["why", str(coco_tiny), "--out", str(out), "--runs", *(str(runs[m]) for m in MODES)]) == 0
    doc = json.loads((out / "why.json").read_text())
    by_mode = {r["mode"]: r for r in doc["runs"]}
    assert set(by_mode) == set(MODES)
    # independently: the categories of each val image from the raw JSON, in file order
    raw = json.loads((coco_tiny / "annotations" / "instances_val2017.json").read_text())
    cats = sorted(c["id"] for c in raw["categories"])
    present = defaultdict(set)
    for a in raw["annotations"]:
        present[a["image_id"]].add(cats.index(a["category_id"]))
    sets = [present[im["id"]] for im in raw["images"] if present[im["id"]]]
    saved = np.load(runs["dominant"] / "predictions.npz")
    predicted, truth = saved["probabilities"].argmax(1), saved["labels"]
    wrong = np.flatnonzero(predicted != truth)
    inside = sum(int(predicted[i]) in sets[i] for i in wrong)
    d = by_mode["dominant"]
    assert (d["wrong_answers"], d["wrong_but_present"]) == (len(wrong), inside)
    assert by_mode["multilabel"]["headline"] == pytest.approx(
        json.loads((runs["multilabel"] / "metrics.json").read_text())["map_macro"]
    )
    assert "## Trained runs" in (out / "report.md").read_text()
