"""Detection models through every serving path: `amlvision predict` (and --draw), the scoring service in
process, and the real local server (`amlvision serve`). The container is in test_serving_detection_container.py.

The model is the exported tiny detector (amlvision.testing.tiny_detector: torchvision's
fasterrcnn_mobilenet_v3_large_320_fpn, 80 coco-tiny classes, box score threshold 0.01), run on real
coco-tiny JPEGs of three sizes. Being untrained its scores are low (0.015-0.09), so requests ask for
score_threshold 0 and the 20 best boxes: every image has boxes to compare.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from amlvision.data.images import load_image
from amlvision.inference.decode import decode_for_detection
from amlvision.inference.detection import DetectionImage, DetectionPredictor
from amlvision.inference.errors import InputError
from amlvision.serving.limits import Limits
from amlvision.serving.local import LocalServer
from amlvision.serving.scoring import ScoringService
from amlvision.testing import tiny_detector
from amlvision.testing.datasets import CACHE
from tests.serving import detection_checks as checks
from tests.serving.detection_checks import (
    BEST,
    LIMITS,
    OPTIONS,
    THRESHOLD,
    as_json,
    b64,
    bad_detection_requests,
    run_predict,
)


@pytest.fixture(scope="session")
def detection_model(shared_data: Path) -> Path:
    return tiny_detector.cached_tiny_detector(CACHE)


@pytest.fixture(scope="session")
def detection_files(shared_data: Path) -> list[Path]:
    return checks.detection_files()


@pytest.fixture(scope="session")
def detection_answer(detection_model: Path, detection_files: list[Path]) -> list[list[dict]]:
    return checks.predict_answer(detection_model, detection_files)


def test_predict_draws_the_boxes_with_labels_and_scores(detection_model, detection_files, detection_answer, tmp_path):
    target = tmp_path / "drawn.png"
    done = run_predict(detection_model, detection_files[:1], "--max-detections", "5", "--score-threshold", "0",
                       "--draw", str(target))  # fmt: skip
    assert done.returncode == 0, done.stderr
    first = detection_answer[0][0]
    assert f"{first['label']}\t{first['score']:.4f}" in done.stdout
    drawn = np.asarray(Image.open(target).convert("RGB"))
    original = load_image(detection_files[0], 3)
    assert drawn.shape == original.shape
    changed = np.any(drawn != original, axis=2)
    x1, y1, x2, _ = (int(v) for v in first["box"])
    assert changed[y1 - 1 : y1 + 3, x1 + 4 : x2 - 4].any(axis=0).all()  # the top edge of the best box (drawn last)
    assert changed.mean() < 0.5  # boxes and tags, not a repainted image

    several = run_predict(detection_model, detection_files, "--max-detections", "3", "--score-threshold", "0",
                          "--draw", str(tmp_path / "d"))  # fmt: skip
    assert several.returncode == 0, several.stderr
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(f"{f.stem}.png" for f in detection_files)


def test_predict_refuses_bad_detection_options_with_exit_2(detection_model, detection_files):
    for option, value in (("--score-threshold", "1.5"), ("--score-threshold", "nan"), ("--max-detections", "0")):
        done = run_predict(detection_model, detection_files[:1], option, value)
        assert done.returncode == 2 and option in done.stderr, (option, value, done.stderr)


@pytest.fixture(scope="module")
def service(detection_model: Path) -> ScoringService:
    return ScoringService.load(detection_model, Limits.from_env(LIMITS))


def test_the_scoring_service_answers_every_body_like_predict(service, detection_files, detection_answer):
    batch = service.score(as_json({"images": [b64(f) for f in detection_files], **OPTIONS}), "application/json")
    assert batch == {"predictions": detection_answer}
    for path, expected in zip(detection_files, detection_answer, strict=True):
        single = service.score(as_json({"image": b64(path), **OPTIONS}), "application/json")
        raw = service.score(path.read_bytes(), "image/jpeg", query={k: str(v) for k, v in OPTIONS.items()})
        assert single == raw == {"predictions": [expected]}
    top2 = service.score(as_json({"image": b64(detection_files[0]), "score_threshold": 0, "max_detections": 2}), None)
    assert len(top2["predictions"][0]) == 2 and top2["predictions"][0][0] == detection_answer[0][0]


def test_boxes_are_mapped_back_to_the_original_pixels(detection_model, detection_files):
    predictor = DetectionPredictor(detection_model)
    pixels = load_image(detection_files[1], 3)  # 500x333
    height, width = pixels.shape[:2]
    as_is = predictor.detect(DetectionImage(pixels, width, height), score_threshold=THRESHOLD, max_detections=BEST)
    doubled = predictor.detect(DetectionImage(pixels, 2 * width, 2 * height), score_threshold=0, max_detections=BEST)
    assert as_is and [d.label for d in as_is] == [d.label for d in doubled]
    np.testing.assert_allclose([d.box for d in doubled], 2 * np.array([d.box for d in as_is]), atol=0.02)


def test_a_large_rotated_photo_is_scaled_down_while_decoding_and_keeps_its_original_size(detection_files):
    photo = Image.open(detection_files[0]).resize((2560, 1920), Image.Resampling.BICUBIC)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display: the original is 1920 wide, 2560 high
    buf = io.BytesIO()
    photo.save(buf, format="JPEG", quality=90, exif=exif)
    pixels, original = decode_for_detection(buf.getvalue(), name="photo", max_side=640)
    assert original == (1920, 2560)
    assert pixels.shape == (640, 480, 3)


def test_the_scoring_service_refuses_bad_detection_requests_naming_the_problem(service, detection_files):
    for name, body, content_type, query, message in bad_detection_requests(detection_files[0]):
        try:
            answer = service.score(body, content_type, query=query)
        except InputError as exc:
            assert message in str(exc), (name, str(exc))
        else:
            pytest.fail(f"{name}: answered {str(answer)[:200]}")


def test_the_local_server_answers_like_predict_refuses_bad_requests_and_describes_detection(
    detection_model, detection_files, detection_answer
):
    env = {**LIMITS, "OMP_NUM_THREADS": "1", "AMLVISION_ORT_THREADS": "1"}
    with LocalServer(detection_model, env=env, startup_timeout=120) as server:
        body = {"images": [b64(f) for f in detection_files], **OPTIONS}
        answer = requests.post(server.score_url, json=body, timeout=120)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": detection_answer}
        called = subprocess.run(
            [sys.executable, "-m", "amlvision", "call", server.url, *map(str, detection_files), "--json",
             "--score-threshold", str(THRESHOLD), "--max-detections", str(BEST)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert called.returncode == 0, called.stderr
        files = [str(f) for f in detection_files]
        assert json.loads(called.stdout) == {"files": files, "predictions": detection_answer}
        raw = requests.post(server.score_url, data=detection_files[1].read_bytes(), timeout=60,
                            headers={"Content-Type": "image/jpeg"}, params=OPTIONS)  # fmt: skip
        assert raw.status_code == 200 and raw.json() == {"predictions": [detection_answer[1]]}
        for name, body_bytes, content_type, query, message in bad_detection_requests(detection_files[0]):
            refused = requests.post(server.score_url, data=body_bytes, params=query, timeout=60,
                                    headers={"Content-Type": content_type})  # fmt: skip
            assert refused.status_code == 400 and message in refused.json()["message"], (name, refused.text)
        swagger = requests.get(server.url + "/swagger.json", timeout=10).json()
        inputs = swagger["definitions"]["ServiceInput"]["properties"]
        assert set(inputs) == {"image", "images", "score_threshold", "max_detections"}
        example = swagger["definitions"]["ServiceOutput"]["example"]["predictions"][0][0]
        assert set(example) == {"label", "score", "box"} and len(example["box"]) == 4
        assert "amlvision.serving" in server.log_text() and "detection" in server.log_text()
