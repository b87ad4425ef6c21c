"""The Docker scoring image serves a detection model: the same boxes as `amlvision predict`, 400s, swagger.

One container of the runtime image with the tiny detector mounted (amlvision.testing.tiny_detector).
Set ``AMLVISION_SCORE_IMAGE`` to a tag of your own when several checkouts share one Docker engine.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from amlvision.testing import docker, tiny_detector
from amlvision.testing.datasets import CACHE
from tests.serving import detection_checks as checks

pytestmark = pytest.mark.docker

MODEL_MOUNT = "/var/azureml-models/model"


@pytest.fixture(scope="module")
def detection_model(shared_data: Path) -> Path:
    return tiny_detector.cached_tiny_detector(CACHE)


@pytest.fixture(scope="module")
def container(detection_model: Path):
    image = docker.build_score_image(docker.SCORE_IMAGE, target="runtime")
    running = docker.run_container(image, volumes={detection_model: MODEL_MOUNT}, env=checks.LIMITS)
    try:
        docker.wait_ready(running, timeout=180)
        yield running
    finally:
        running.remove()


def test_the_container_answers_a_detection_request_with_the_boxes_of_predict(container, detection_model):
    files = checks.detection_files()
    expected = checks.predict_answer(detection_model, files)
    batch = requests.post(f"{container.url}/score", json={"images": [checks.b64(f) for f in files], **checks.OPTIONS},
                          timeout=120)  # fmt: skip
    assert batch.status_code == 200, batch.text
    assert batch.json() == {"predictions": expected}
    raw = requests.post(f"{container.url}/score", data=files[2].read_bytes(), params=checks.OPTIONS, timeout=60,
                        headers={"Content-Type": "image/jpeg"})  # fmt: skip
    assert raw.status_code == 200 and raw.json() == {"predictions": [expected[2]]}


def test_the_container_refuses_bad_detection_requests_and_keeps_serving(container):
    files = checks.detection_files()
    for name, body, content_type, query, message in checks.bad_detection_requests(files[0]):
        refused = requests.post(f"{container.url}/score", data=body, params=query, timeout=60,
                                headers={"Content-Type": content_type})  # fmt: skip
        assert refused.status_code == 400 and message in refused.json()["message"], (name, refused.text)
    after = requests.post(f"{container.url}/score", data=files[1].read_bytes(), timeout=60,
                          headers={"Content-Type": "image/jpeg"})  # fmt: skip
    assert after.status_code == 200 and len(after.json()["predictions"]) == 1
    assert container.inspect()["State"]["Running"]


def test_the_container_publishes_the_detection_swagger(container):
    for version in ("2", "3"):
        document = requests.get(f"{container.url}/swagger.json", params={"version": version}, timeout=10).json()
        text = str(document)
        for field in ("score_threshold", "max_detections", "images", "box"):
            assert field in text, (version, field)
    swagger2 = requests.get(f"{container.url}/swagger.json", timeout=10).json()
    assert set(swagger2["definitions"]["ServiceInput"]["properties"]) == {
        "image", "images", "score_threshold", "max_detections"
    }  # fmt: skip
