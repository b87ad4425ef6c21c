"""The TensorFlow engine (``--engine tensorflow``) on real CIFAR-10 images, and its PyTorch twin.

The run itself is the session fixture ``tf_run`` (tests/conftest.py): train.py in a subprocess,
``tf-cifar10`` for 2 epochs on the 1,500-image subset.
"""

from __future__ import annotations

import functools
import json
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from amlvision.data.images import load_image
from amlvision.inference.preprocess import PreprocessConfig
from tests.conftest import TF_RUN_ARGS

from .helpers import predictions, run_train, start_train

OUTPUT_FILES = (
    "metrics.json",
    "classification_report.txt",
    "confusion_matrix.json",
    "confusion_matrix.png",
    "mistakes.png",
    "predictions.npz",
    "model.onnx",
    "model.keras",
    "labels.json",
    "preprocess.json",
    "checkpoint.pt",
    "config.yaml",
    "logs/metrics.jsonl",
)


def _test_images(cifar_subset: Path, per_class: int = 5) -> tuple[list[np.ndarray], np.ndarray]:
    files = [p for d in sorted((cifar_subset / "test").iterdir()) for p in sorted(d.glob("*.png"))[:per_class]]
    images = [load_image(p, channels=3) for p in files]
    return images, PreprocessConfig.from_dict({"height": 32, "width": 32, "channels": 3}).images_to_input(images)


def test_tensorflow_run_learns_and_writes_every_output(tf_run: Path) -> None:
    for name in OUTPUT_FILES:
        assert (tf_run / name).is_file(), name
    metrics = json.loads((tf_run / "metrics.json").read_text())
    history = metrics["history"]
    assert metrics["engine"] == "tensorflow" and metrics["model"] == "tf-cifar10" and len(history) == 2
    assert history[1]["loss"] < history[0]["loss"] < 2.35  # cross-entropy falls from ln(10) = 2.30
    assert metrics["accuracy"] > 0.2 and metrics["num_samples"] == 500  # chance is 0.1
    assert sum(map(sum, metrics["confusion_matrix"]["matrix"])) == 500
    assert metrics["onnx_check"]["max_abs_diff"] <= metrics["onnx_check"]["tolerance"]
    labels, probs = predictions(tf_run)
    assert np.isclose(float((probs.argmax(1) == labels).mean()), metrics["accuracy"])
    records = [json.loads(line) for line in (tf_run / "logs" / "metrics.jsonl").read_text().splitlines()]
    kinds = {r["kind"] for r in records}
    assert {"metrics", "params", "tags", "table", "confusion_matrix", "image", "end"} <= kinds
    tags = next(r for r in records if r["kind"] == "tags")
    assert "tensorflow" in json.dumps(tags)
    preprocess = json.loads((tf_run / "preprocess.json").read_text())
    assert PreprocessConfig.from_dict(preprocess).mean == (0.0, 0.0, 0.0)  # the input stage is inside the graph
    assert "per_image_standardization" in preprocess["in_graph"]


def test_onnx_export_answers_like_tensorflow_on_real_images(tf_run: Path, cifar_subset: Path) -> None:
    import onnxruntime as ort

    from amlvision.tf.models import TFNet, central_crop_standardize, serving_function
    from amlvision.tf.runtime import keras

    model = keras.models.load_model(tf_run / "model.keras")
    serve = serving_function(
        TFNet("tf-cifar10", model, (3, 32, 32), functools.partial(central_crop_standardize, crop=(24, 24)))
    )
    _, pixels = _test_images(cifar_subset)  # decoded exactly as amlvision predict and score.py do
    expected = serve(pixels)["logits"].numpy()
    session = ort.InferenceSession(str(tf_run / "model.onnx"), providers=["CPUExecutionProvider"])
    actual = session.run(["logits"], {"input": pixels})[0]
    assert np.abs(actual - expected).max() <= 1e-4 + 1e-4 * np.abs(expected).max()
    assert np.array_equal(actual.argmax(1), expected.argmax(1))


def test_sigterm_then_resume_repeats_the_uninterrupted_run(tf_run: Path, cifar_subset: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    args = ["--data", str(cifar_subset), *TF_RUN_ARGS, "--outputs", str(outputs), "--threads", "2", "--progress", "log"]
    proc = start_train(args)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "epoch 1/2 step 4/" in line:
            proc.send_signal(signal.SIGTERM)
            break
    rest, _ = proc.communicate(timeout=300)
    assert proc.returncode == 143, "".join(lines) + rest
    assert not (outputs / "model.onnx").exists()
    done = run_train([*args, "--resume"], timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resumed from" in done.stderr
    ref_labels, ref_probs = predictions(tf_run)
    labels, probs = predictions(outputs)
    assert np.array_equal(labels, ref_labels)
    assert np.array_equal(probs, ref_probs)  # bit for bit: the same weights
    ref, got = (json.loads((p / "metrics.json").read_text()) for p in (tf_run, outputs))
    assert [r["loss"] for r in got["history"]] == [r["loss"] for r in ref["history"]]


def _serve_and_twin(model):
    """TensorFlow's serving graph of ``model`` and the PyTorch twin holding the same weights."""
    from amlvision.tf.models import TFNet, central_crop_standardize, serving_function
    from amlvision.tf.twin import torch_state_from_keras
    from amlvision.training.models import TFCifar10Net

    net = TFNet("tf-cifar10", model, (3, 32, 32), functools.partial(central_crop_standardize, crop=(24, 24)))
    twin = TFCifar10Net(10, (3, 32, 32))
    twin.load_state_dict(torch_state_from_keras(model))
    return serving_function(net), twin.eval()


def test_pytorch_twin_computes_what_tensorflow_computes_with_the_same_weights(tf_run: Path, cifar_subset: Path) -> None:
    from amlvision.tf.models import build
    from amlvision.tf.runtime import keras

    keras.utils.set_random_seed(5)
    initial = build("tf-cifar10", 10, (3, 32, 32), weight_decay=0.004).model
    trained = keras.models.load_model(tf_run / "model.keras")  # larger activations: LRN and pooling offsets matter
    _, pixels = _test_images(cifar_subset)
    for model in (initial, trained):
        serve, twin = _serve_and_twin(model)
        assert model.count_params() == sum(p.numel() for p in twin.parameters()) == 1_068_298  # the tutorial's
        expected = serve(pixels)["logits"].numpy()
        with torch.no_grad():
            actual = twin(torch.from_numpy(pixels)).numpy()
        assert np.abs(actual - expected).max() <= 1e-4 + 1e-4 * np.abs(expected).max()
        assert np.array_equal(actual.argmax(1), expected.argmax(1))


def test_lrn_and_same_pooling_match_tensorflow_where_a_wrong_mapping_would_not() -> None:
    """TF LRN(depth_radius 4, alpha a) = torch LocalResponseNorm(size 9, alpha 9a); TF SAME pooling pads the end."""
    from amlvision.tf.runtime import tf
    from amlvision.training.models import _same_max_pool

    x = np.random.default_rng(0).normal(0, 40, (4, 12, 12, 64)).astype(np.float32)  # activations where LRN bites
    expected = tf.nn.local_response_normalization(x, depth_radius=4, bias=1.0, alpha=0.001 / 9, beta=0.75).numpy()
    nchw = torch.from_numpy(x).permute(0, 3, 1, 2)
    right = torch.nn.LocalResponseNorm(9, alpha=0.001, beta=0.75, k=1.0)(nchw).permute(0, 2, 3, 1).numpy()
    wrong = torch.nn.LocalResponseNorm(9, alpha=0.001 / 9, beta=0.75, k=1.0)(nchw).permute(0, 2, 3, 1).numpy()
    assert np.abs(right - expected).max() < 1e-4
    assert np.abs(wrong - expected).max() > 1e-2
    for size in (24, 12, 25):
        y = np.random.default_rng(size).normal(size=(2, size, size, 8)).astype(np.float32)
        pooled = tf.nn.max_pool2d(y, 3, 2, "SAME").numpy()
        ours = _same_max_pool(torch.from_numpy(y).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
        naive = torch.nn.MaxPool2d(3, 2, padding=1)(torch.from_numpy(y).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        assert np.array_equal(ours, pooled)
        assert size % 2 or not np.array_equal(naive.numpy(), pooled)  # even sizes: torch's symmetric pad differs


def test_tutorial_augmentation_is_per_image_and_seeded(cifar_subset: Path) -> None:
    from amlvision.tf.data import tutorial_augment
    from amlvision.tf.runtime import tf

    images, _ = _test_images(cifar_subset, per_class=2)
    batch = tf.constant(np.stack(images))
    first = tutorial_augment(batch, tf.constant([1, 2], tf.int64), (24, 24)).numpy()
    again = tutorial_augment(batch, tf.constant([1, 2], tf.int64), (24, 24)).numpy()
    other = tutorial_augment(batch, tf.constant([1, 3], tf.int64), (24, 24)).numpy()
    assert first.shape == (20, 24, 24, 3) and np.array_equal(first, again) and not np.array_equal(first, other)
    assert np.allclose(first.mean(axis=(1, 2, 3)), 0, atol=1e-4)  # per_image_standardization, image by image
    assert np.allclose(first.std(axis=(1, 2, 3)), 1, atol=1e-3)
    # the same image twice in one batch gets independent crops/flips/brightness/contrast
    twice = tutorial_augment(tf.constant(np.stack([images[0], images[0]])), tf.constant([4, 4], tf.int64), (24, 24))
    assert not np.array_equal(twice[0].numpy(), twice[1].numpy())


def test_pytorch_twin_trains_with_the_tutorial_recipe(cifar_packed: Path, tmp_path: Path) -> None:
    """``--model tf-cifar10`` on the PyTorch engine: decay only on local3/local4, EMA weights evaluated and exported."""
    from amlvision.training.config import parse_config
    from amlvision.training.loop import Trainer, make_optimizer

    outputs = tmp_path / "out"
    args = ["--data", str(cifar_packed), "--model", "tf-cifar10", "--epochs", "1", "--epoch-size", "256"]
    cfg = parse_config([*args, "--batch-size", "64", "--outputs", str(outputs), "--threads", "2", "--progress", "log"])
    assert (cfg.engine, cfg.ema, cfg.weight_decay, cfg.mean_std, cfg.translate) == ("pytorch", 0.9999, 0.004, "none", 4)
    trainer = Trainer(cfg)
    metrics = trainer.run()
    groups = make_optimizer(trainer.model, cfg).param_groups
    assert [len(g["params"]) for g in groups] == [2, 8] and groups[1]["weight_decay"] == 0.0
    raw, ema = trainer.model.state_dict(), trainer.ema.shadow.state_dict()
    saved = torch.load(outputs / "model.pt")
    assert all(torch.equal(saved[k], ema[k]) for k in ema) and not torch.equal(ema["conv1.weight"], raw["conv1.weight"])
    assert metrics["onnx_check"]["max_abs_diff"] <= metrics["onnx_check"]["tolerance"]


def test_engine_and_model_must_agree() -> None:
    from amlvision.training.config import parse_config

    assert parse_config(["--model", "keras-cnn"]).engine == "tensorflow"  # the Keras tutorial exists only there
    with pytest.raises(ValueError, match="does not exist on the pytorch engine"):
        parse_config(["--model", "keras-cnn", "--engine", "pytorch"])
    with pytest.raises(ValueError, match="does not exist on the tensorflow engine"):
        parse_config(["--model", "resnet20", "--engine", "tensorflow"])
