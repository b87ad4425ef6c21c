"""The scoring service (what score.py runs) without an HTTP server: inputs, answers, refusals, config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from inference_schema.schema_util import get_input_schema, get_output_schema, is_schema_decorated

from amlvision.inference import InputError
from amlvision.inference.decode import decode_image_file
from amlvision.serving import schema
from amlvision.serving.limits import Limits
from amlvision.serving.scoring import ScoringService, find_model_dir
from tests.serving.conftest import MAX_BODY_BYTES, MAX_IMAGES, assert_same_predictions, b64


@pytest.fixture(scope="module")
def service(model_dir: Path) -> ScoringService:
    limits = Limits(max_images=MAX_IMAGES, max_image_bytes=200_000, max_body_bytes=MAX_BODY_BYTES)
    return ScoringService.load(model_dir, limits)


def _json(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_base64_batch_single_and_raw_bytes_answer_like_predict(service, test_files, predict_answer):
    batch = service.score(_json({"images": [b64(p.read_bytes()) for p in test_files]}), "application/json")
    assert_same_predictions(batch["predictions"], predict_answer)
    for path, expected in list(zip(test_files, predict_answer, strict=True))[:5]:
        single = service.score(_json({"image": b64(path.read_bytes())}), "application/json")
        raw = service.score(path.read_bytes(), "image/png")
        data_url = service.score(_json({"image": "data:image/png;base64," + b64(path.read_bytes())}), None)
        for answer in (single, raw, data_url):
            assert_same_predictions(answer["predictions"], [expected])


def test_float32_arrays_answer_like_predict(service, test_files, predict_answer):
    pixels = np.stack([decode_image_file(p, channels=3) for p in test_files]).astype(np.float32)  # NHWC
    nchw = service.score(_json({"data": pixels.transpose(0, 3, 1, 2).tolist()}), "application/json")
    nhwc = service.score(_json({"data": pixels.tolist()}), "application/json")
    normalised = service.predictor.preprocess.normalise(pixels.transpose(0, 3, 1, 2))
    pre = service.score(_json({"data": normalised.tolist(), "normalized": True}), "application/json")
    for answer in (nchw, nhwc, pre):
        assert_same_predictions(answer["predictions"], predict_answer)


def test_top_k_from_body_or_query(service, test_files):
    body = _json({"image": b64(test_files[0].read_bytes()), "top_k": 5})
    assert len(service.score(body, "application/json")["predictions"][0]["top_k"]) == 5
    raw = service.score(test_files[0].read_bytes(), "image/png", query_top_k="10")
    assert len(raw["predictions"][0]["top_k"]) == 10
    assert abs(sum(t["probability"] for t in raw["predictions"][0]["top_k"]) - 1) < 1e-6
    with pytest.raises(InputError, match="query parameter top_k must be from 1 to 10"):
        service.score(test_files[0].read_bytes(), "image/png", query_top_k="11")


def test_every_bad_request_is_refused_with_a_reason(service, bad_request_list):
    for bad in bad_request_list:
        with pytest.raises(InputError) as info:
            service.score(bad.body, bad.content_type)
        assert bad.message in str(info.value), (bad.name, str(info.value))


def test_limits_come_from_the_environment():
    limits = Limits.from_env({"AMLVISION_MAX_IMAGES": "8", "AMLVISION_TOP_K": "5", "AMLVISION_MAX_IMAGE_PIXELS": ""})
    assert (limits.max_images, limits.default_top_k, limits.max_image_pixels) == (8, 5, Limits().max_image_pixels)
    with pytest.raises(ValueError, match="AMLVISION_MAX_BODY_BYTES='-1': expected a positive integer"):
        Limits.from_env({"AMLVISION_MAX_BODY_BYTES": "-1"})
    assert "AMLVISION_MAX_IMAGE_BYTES" in Limits.env_names()


def test_model_dir_is_found_below_azureml_model_dir(model_dir, tmp_path, monkeypatch):
    nested = tmp_path / "registered" / "outputs"
    shutil.copytree(model_dir, nested)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path))
    assert find_model_dir() == nested
    shutil.copytree(model_dir, tmp_path / "second")
    with pytest.raises(FileNotFoundError, match="several model directories"):
        find_model_dir()
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path / "registered" / "nothing"))
    with pytest.raises(FileNotFoundError, match="no model.onnx"):
        find_model_dir()


def test_an_unreadable_model_folder_is_reported_as_such(tmp_path, monkeypatch):
    monkeypatch.setattr("os.access", lambda path, mode: False)  # as seen by the container's non-root user
    with pytest.raises(PermissionError, match="make the model folder world-readable"):
        find_model_dir(tmp_path)


def test_schema_is_registered_from_the_loaded_model(service):
    def run(request):  # stands in for score.py's run(): registration is by function identity
        return request

    assert not is_schema_decorated(run)
    schema.register(run, service.predictor)
    assert is_schema_decorated(run)
    inputs = get_input_schema(run)
    assert set(inputs["properties"]) == {"data", "image", "images", "top_k", "layout", "normalized"}
    assert np.asarray(inputs["example"]["data"]).shape == (1, 3, 32, 32)  # the model's own input shape
    item = get_output_schema(run)["properties"]["predictions"]["items"]
    assert item["required"] == ["label", "probability", "top_k"]
