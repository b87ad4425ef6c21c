"""The scoring container (no TensorFlow inside) serves a TensorFlow-trained model exactly as ``amlvision predict``.

The model is the session fixture ``tf_run`` (tests/conftest.py): ``tf-cifar10`` trained by TensorFlow and
exported by tf2onnx with its input stage in the graph. TensorFlow's own prediction on the same files is
the reference for ``amlvision predict``, and ``amlvision predict`` for the container.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from amlvision.testing import docker
from tests.serving import http_checks
from tests.serving.conftest import TEST_LIMITS

MODEL_MOUNT = "/var/azureml-models/model"


@pytest.fixture(scope="module")
def tf_predict_answer(tf_run: Path, test_files: list[Path]) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-m", "amlvision", "predict", str(tf_run), *map(str, test_files), "--json", "--top-k", "3"],
        capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "2"},
    )  # fmt: skip
    return json.loads(done.stdout)["predictions"]


def test_amlvision_predict_gives_tensorflows_labels(tf_run: Path, test_files: list[Path], tf_predict_answer) -> None:
    from amlvision.data.images import load_image
    from amlvision.tf.models import TFNet, central_crop_standardize, serving_function
    from amlvision.tf.runtime import keras

    model = keras.models.load_model(tf_run / "model.keras")
    serve = serving_function(
        TFNet("tf-cifar10", model, (3, 32, 32), functools.partial(central_crop_standardize, crop=(24, 24)))
    )
    pixels = np.stack([load_image(p, channels=3) for p in test_files]).transpose(0, 3, 1, 2).astype(np.float32)
    probs = serve(pixels)["logits"].numpy()
    class_names = json.loads((tf_run / "labels.json").read_text())
    tf_labels = [class_names[i] for i in probs.argmax(1)]
    assert [a["label"] for a in tf_predict_answer] == tf_labels
    assert len(set(tf_labels)) > 1  # a trained model, not a constant answer


@pytest.mark.docker
def test_scoring_container_answers_the_tensorflow_model_like_predict(
    tf_run: Path, test_files: list[Path], tf_predict_answer
) -> None:
    image = docker.build_score_image(docker.SCORE_IMAGE, target="runtime")
    running = docker.run_container(image, volumes={tf_run: MODEL_MOUNT}, env=TEST_LIMITS)
    try:
        docker.wait_ready(running)
        http_checks.check_predictions_match_predict(running.url, test_files, tf_predict_answer)
        probe = running.exec("python3", "-c", "import tensorflow")
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr
    finally:
        running.remove()
