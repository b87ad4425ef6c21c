"""Issue 15 (F1-F11): hostile and careless input against the real server, the CLI and the scoring service.

The server is ``amlvision serve`` (azmlinfsrv, gunicorn gevent workers) on 127.0.0.1 with the
default limits, an API key, short client timeouts and a model folder that also holds metrics.json
(as ``make train`` writes it). Memory is the worker's own resident peak (``VmHWM``, reset per request).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from amlvision.inference import InputError, Predictor
from amlvision.inference.decode import decode_file_for_model, decode_image_file
from amlvision.serving.limits import Limits
from amlvision.serving.scoring import ScoringService
from amlvision.testing import hostile
from amlvision.testing.docker import free_port

API_KEY = "test-key-4f1c"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
# docs/serving.md: 2 x AMLVISION_MAX_BODY_BYTES + AMLVISION_MAX_IMAGE_BYTES + 20 B x AMLVISION_MAX_IMAGE_PIXELS
# = 464 MiB with the defaults; the documented bound leaves room for allocator slack.
WORKER_MEMORY_BOUND = 512 * 2**20


def _strict_json(text: str) -> object:
    """json.loads that refuses NaN/Infinity, as every standard JSON parser outside Python does."""

    def refuse(constant: str) -> None:
        raise ValueError(f"invalid JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def served_model(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("served") / "outputs"
    shutil.copytree(model_dir, folder)
    (folder / "metrics.json").write_text(json.dumps({"accuracy": 0.5}))  # as make train leaves it
    return folder


@pytest.fixture(scope="module")
def server(served_model: Path, tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AMLVISION_ORT_THREADS": "1", "AMLVISION_API_KEY": API_KEY,
           "AMLVISION_BODY_TIMEOUT_S": "3", "AMLVISION_HEADER_TIMEOUT_S": "3"}  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "amlvision", "serve", str(served_model), "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if requests.get(url + "/", timeout=2).status_code == 200:
                break
        except (requests.ConnectionError, requests.Timeout):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"amlvision serve did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    info = {"url": url, "port": port, "proc": proc, "log": log}
    yield info
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _score(server: dict, body: bytes, content_type: str = "application/json", **kwargs) -> requests.Response:
    headers = {"Content-Type": content_type, **AUTH, **kwargs.pop("headers", {})}
    return requests.post(server["url"] + "/score", data=body, headers=headers, timeout=120, **kwargs)


def test_f1_f2_worst_requests_stay_under_the_documented_worker_memory_bound(server, test_files):
    worker = hostile.children(server["proc"].pid)[0]
    assert _score(server, test_files[0].read_bytes(), "image/png").status_code == 200
    report = []
    for attack in hostile.memory_attacks():
        before, _ = hostile.rss_bytes(worker)
        hostile.reset_peak(worker)
        response = _score(server, attack.body, attack.content_type)
        _, peak = hostile.rss_bytes(worker)
        report.append((attack.name, response.status_code, (peak - before) / 2**20))
        assert response.status_code == attack.expect, (attack.name, response.text[:300])
        assert peak - before < WORKER_MEMORY_BOUND, report
    print("\n".join(f"{name}: HTTP {status}, worker peak +{mib:.0f} MiB" for name, status, mib in report))
    by_name = {name: status for name, status, _ in report}
    # F1: the 16-image bomb batch is refused by the per-request pixel budget after 8 images.
    assert by_name["16 x 4096x4096 1-bit PNG in one request"] == 400


def test_f1_request_pixel_budget_and_one_at_a_time_decoding(model_dir):
    limits = Limits(max_request_pixels=3 * 64 * 64)
    service = ScoringService.load(model_dir, limits)
    png = hostile.png_of_zeros(64, 64, color_type=2)
    assert len(service.score(hostile.js({"images": [hostile.b64(png)] * 3}), None)["predictions"]) == 3
    with pytest.raises(InputError, match=r"images\[3\]: the images up to this one hold 16,384 pixels, over the limit"):
        service.score(hostile.js({"images": [hostile.b64(png)] * 4}), None)


def test_f1_large_jpeg_is_reduced_while_decoding_and_predict_agrees(model_dir, tmp_path):
    predictor = Predictor(model_dir, threads=1)
    photo = hostile.jpeg_photo(2048, 1536)
    with Image.open(io.BytesIO(photo)) as img:
        img.draft("RGB", (64, 64))
        assert img.size == (256, 192)  # the decoder itself scales by 1/8, never holding 2048x1536
    path = tmp_path / "photo.jpg"
    path.write_bytes(photo)
    from_file = decode_file_for_model(path, preprocess=predictor.preprocess)
    service = ScoringService.load(model_dir)
    served = service.score(photo, "image/jpeg")["predictions"][0]
    expected = predictor.predict_images([from_file], k=3)[0]
    assert served["label"] == expected.label
    np.testing.assert_allclose(served["probability"], expected.probabilities[0], atol=1e-6)
    # and the reduced decode is a faithful downscale of the full decode (mean abs difference < 2 grey levels)
    full = predictor.preprocess.resize_pixels(decode_image_file(path, channels=3))
    assert np.abs(full.astype(int) - from_file.astype(int)).mean() < 2.0


def test_f2_json_counts_are_checked_before_json_is_parsed(model_dir):
    service = ScoringService.load(model_dir)
    started = time.perf_counter()
    with pytest.raises(InputError, match="objects"):
        service.score(b'{"data":[' + b",".join([b"{}"] * 2_000_000) + b"]}", None)
    with pytest.raises(InputError, match="values, more than the 787,008 needed by the limit of 256 images"):
        service.score(hostile.js({"data": np.zeros((300, 3, 32, 32), np.uint8).tolist()}), None)
    assert time.perf_counter() - started < 5  # parsing 2 M objects alone takes longer on these cores


def test_f3_slow_bodies_get_408_and_slow_headers_are_cut_while_normal_requests_are_served(server, test_files):
    png = test_files[0].read_bytes()
    latencies = []
    with hostile.SlowClients(server["port"], count=20, seconds=12, headers=AUTH) as slow:
        for _ in range(10):
            started = time.perf_counter()
            response = _score(server, png, "image/png")
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
            time.sleep(0.2)
    outcomes = sorted(slow.results)
    assert len(outcomes) == 20
    # AMLVISION_BODY_TIMEOUT_S=3 answers the body-drippers 408; AMLVISION_HEADER_TIMEOUT_S=3 closes the others.
    assert outcomes.count("closed by server") == 10, outcomes
    assert all("408" in o for o in outcomes if o.startswith("answered")), outcomes
    assert max(latencies) < 2.0, latencies


def test_f4_unicode_digit_top_k_is_a_400(server, test_files):
    response = _score(server, test_files[0].read_bytes(), "image/png", params={"top_k": "\u00b2"})
    assert response.status_code == 400
    assert "top_k must be an integer" in response.json()["message"]


def test_f5_answers_are_always_valid_json(server):
    huge = np.full((1, 3, 32, 32), 3e38, dtype=np.float32)
    response = _score(server, hostile.js({"data": huge.tolist(), "normalized": True}))
    assert response.status_code == 400
    assert "not a finite number" in _strict_json(response.text)["message"]


def test_f9_400_messages_do_not_echo_large_client_input(server, test_files):
    png = hostile.b64(test_files[0].read_bytes())
    bodies = [
        b'{"' + b"x" * 1_000_000 + b'": 1, "image": "' + png.encode() + b'"}',
        hostile.js({"image": png, "top_k": "9" * 1_000_000}),
        hostile.js({"data": [[[0.0]]], "layout": "N" * 1_000_000}),
    ]
    for body in bodies:
        response = _score(server, body)
        assert response.status_code == 400
        assert len(response.content) < 1000, response.text[:2000]


def test_api_key_is_required_when_set(server, test_files):
    png = test_files[0].read_bytes()
    missing = requests.post(server["url"] + "/score", data=png, headers={"Content-Type": "image/png"}, timeout=30)
    wrong = requests.post(server["url"] + "/score", data=png, timeout=30,
                          headers={"Content-Type": "image/png", "Authorization": "Bearer nope"})  # fmt: skip
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert requests.get(server["url"] + "/", timeout=10).status_code == 200  # liveness stays open
    assert _score(server, png, "image/png").status_code == 200


def test_f11_package_log_lines_with_request_ids_reach_the_server_log(server):
    response = _score(server, hostile.js({"image": "@@@"}))
    assert response.status_code == 400
    request_id = response.headers["x-request-id"]
    time.sleep(0.5)
    log = server["log"].read_text()
    assert "amlvision.serving - loaded" in log
    assert f"amlvision.serving - request {request_id}: 400 'image': not valid base64" in log
    assert "metrics.json" not in log and "Traceback" not in log


def test_f10_shutdown_is_clean(server):
    # Runs last in this module: stop the master as an operator would and read the whole log.
    proc = server["proc"]
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    log = server["log"].read_text()
    assert "std::system_error" not in log and "terminate called" not in log, log[-2000:]
    assert "Traceback" not in log


def _broken_copies(model_dir: Path, root: Path) -> dict[str, tuple[Path, str]]:
    """Model folders a careless user produces, with the file each error must name."""
    cases = {}
    truncated = root / "truncated"
    shutil.copytree(model_dir, truncated)
    data = (model_dir / "model.onnx").read_bytes()
    (truncated / "model.onnx").write_bytes(data[: len(data) // 3])
    cases["truncated model.onnx"] = (truncated, str(truncated / "model.onnx"))
    empty = root / "empty"
    shutil.copytree(model_dir, empty)
    (empty / "model.onnx").write_bytes(b"")
    cases["empty model.onnx"] = (empty, str(empty / "model.onnx"))
    labels = root / "labels"
    shutil.copytree(model_dir, labels)
    (labels / "labels.json").write_text('["cat", ')
    cases["broken labels.json"] = (labels, str(labels / "labels.json"))
    short = root / "short"
    shutil.copytree(model_dir, short)
    (short / "labels.json").write_text('["cat", "dog"]')
    cases["labels.json of the wrong length"] = (short, "labels.json names 2 classes")
    return cases


def test_f6_f8_predict_evaluate_and_serve_fail_fast_naming_the_bad_file(model_dir, test_files, cifar_subset, tmp_path):
    # predict sees every case; evaluate (slow to import) and serve one bad model.onnx and one bad labels.json each.
    commands_for = {"truncated model.onnx": ("predict", "evaluate"), "empty model.onnx": ("predict", "serve"),
                    "broken labels.json": ("predict", "evaluate"),
                    "labels.json of the wrong length": ("predict", "serve")}  # fmt: skip
    for case, (folder, named) in _broken_copies(model_dir, tmp_path).items():
        runs = {
            "predict": ["predict", str(folder), str(test_files[0])],
            "evaluate": ["evaluate", str(folder), str(cifar_subset), "--out", str(tmp_path / "eval")],
            "serve": ["serve", str(folder), "--port", str(free_port())],
        }
        for command in commands_for[case]:
            args = runs[command]
            started = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "amlvision", *args], capture_output=True, text=True,
                                  timeout=60)  # fmt: skip
            assert done.returncode == 2, (case, command, done.stderr[-2000:])
            assert named in done.stderr and "Traceback" not in done.stderr, (case, command, done.stderr[-2000:])
            assert time.monotonic() - started < 30, (case, command)


def test_serve_warns_that_a_public_host_without_a_key_exposes_the_model(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "AMLVISION_API_KEY"}
    (tmp_path / "model.onnx").write_bytes(b"")  # stops before binding anything
    done = subprocess.run([sys.executable, "-m", "amlvision", "serve", str(tmp_path), "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    assert "exposes the model to the network without an API key" in done.stderr
    assert done.returncode == 2
