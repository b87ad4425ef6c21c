"""HTTP checks shared by the local-server and container tests: the same requests, the same verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import requests

from amlvision.inference.decode import decode_image_file
from tests.serving.conftest import BadRequest, assert_same_predictions, b64


def post(url: str, body: bytes, content_type: str, **params) -> requests.Response:
    return requests.post(f"{url}/score", data=body, headers={"Content-Type": content_type}, params=params, timeout=30)


def check_predictions_match_predict(url: str, files: list[Path], expected: list[dict]) -> None:
    """Base64 (batch and single), raw image/png bytes and float32 arrays all answer like `amlvision predict`."""
    batch = post(url, json.dumps({"images": [b64(p.read_bytes()) for p in files]}).encode(), "application/json")
    assert batch.status_code == 200, batch.text
    assert_same_predictions(batch.json()["predictions"], expected)

    pixels = np.stack([decode_image_file(p, channels=3) for p in files]).astype(np.float32)
    array = post(url, json.dumps({"data": pixels.transpose(0, 3, 1, 2).tolist()}).encode(), "application/json")
    assert array.status_code == 200, array.text
    assert_same_predictions(array.json()["predictions"], expected)

    for path, answer in zip(files, expected, strict=True):
        single = post(url, json.dumps({"image": b64(path.read_bytes())}).encode(), "application/json")
        raw = post(url, path.read_bytes(), "image/png")
        one = post(url, json.dumps({"data": pixels[files.index(path)].tolist()}).encode(), "application/json")
        for response in (single, raw, one):
            assert response.status_code == 200, response.text
            assert_same_predictions(response.json()["predictions"], [answer])


def check_bad_requests_get_400_and_serving_continues(url: str, bad: list[BadRequest], good_file: Path) -> None:
    good_body = good_file.read_bytes()
    for request in bad:
        response = post(url, request.body, request.content_type)
        assert response.status_code == 400, (request.name, response.status_code, response.text)
        message = response.json()["message"]
        assert request.message in message, (request.name, message)
        after = post(url, good_body, "image/png")
        assert after.status_code == 200, (request.name, after.text)
        assert len(after.json()["predictions"]) == 1


def check_swagger(url: str) -> None:
    for version in ("2", "3"):
        response = requests.get(f"{url}/swagger.json", params={"version": version}, timeout=10)
        assert response.status_code == 200, response.text
        document = response.json()
        text = json.dumps(document)
        for field in ('"data"', '"image"', '"images"', '"top_k"', '"predictions"'):
            assert field in text, (version, field)
    swagger2 = requests.get(f"{url}/swagger.json", timeout=10).json()
    service_input = swagger2["definitions"]["ServiceInput"]
    assert {"data", "image", "images"} <= set(service_input["properties"])
    assert "request" not in service_input["properties"]
