"""The Docker scoring image, built with a real engine from the local base image and tested as a container.

The engine is started (and if needed installed) by amlvision.testing.docker; the base image is built
with debootstrap because no registry is reachable. Builds are layer-cached, so reruns take seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from amlvision.testing import docker, hostile
from tests.serving import http_checks
from tests.serving.conftest import TEST_LIMITS

pytestmark = pytest.mark.docker

MODEL_MOUNT = "/var/azureml-models/model"


@pytest.fixture(scope="module")
def score_image() -> str:
    return docker.build_score_image(docker.SCORE_IMAGE, target="runtime")


@pytest.fixture(scope="module")
def container(score_image: str, model_dir: Path):
    running = docker.run_container(score_image, volumes={model_dir: MODEL_MOUNT}, env=TEST_LIMITS)
    try:
        docker.wait_ready(running)
        yield running
    finally:
        running.remove()


def test_container_answers_like_predict(container, test_files, predict_answer):
    http_checks.check_predictions_match_predict(container.url, test_files, predict_answer)


def test_container_refuses_bad_requests_with_400_and_keeps_serving(container, bad_request_list, test_files):
    http_checks.check_bad_requests_get_400_and_serving_continues(container.url, bad_request_list, test_files[0])
    assert container.inspect()["State"]["Running"]


def test_container_publishes_swagger(container):
    http_checks.check_swagger(container.url)


def test_container_reports_healthy(container):
    assert docker.wait_healthy(container, timeout=60) == "healthy"


def test_container_runs_as_a_non_root_user(container, score_image):
    config = json.loads(subprocess.run(["docker", "image", "inspect", score_image], capture_output=True,
                                       text=True, check=True).stdout)[0]["Config"]  # fmt: skip
    assert config["User"] not in ("", "root", "0")
    uid = container.exec("id", "-u")
    assert uid.returncode == 0 and uid.stdout.strip() not in ("", "0")
    workers = container.exec("sh", "-c", "ps -eo user= 2>/dev/null || stat -c %U /proc/[0-9]*")
    assert "root" not in workers.stdout.split()


def test_image_has_the_slim_runtime_and_nothing_for_training_or_compiling(container):
    imports = container.exec("python3", "-c", "import onnxruntime, numpy, PIL, inference_schema, "
                             "azureml_inference_server_http, amlvision.inference, amlvision.serving.entry")  # fmt: skip
    assert imports.returncode == 0, imports.stderr
    for module in ("torch", "torchvision", "tensorflow", "keras", "tf2onnx", "sklearn", "scipy", "matplotlib"):
        probe = container.exec("python3", "-c", f"import {module}")
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr, module
    compilers = container.exec("sh", "-c", "command -v gcc cc c++ g++ clang make; true")
    assert compilers.stdout.strip() == ""


def test_image_stays_under_400_mb(score_image):
    size = int(subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", score_image],
                              capture_output=True, text=True, check=True).stdout)  # fmt: skip
    assert size <= 400 * 1000 * 1000, f"scoring image is {size / 1e6:.0f} MB"


def test_image_with_the_model_baked_in_serves_without_a_mount(model_dir, test_files, predict_answer):
    staged = docker.REPO_ROOT / "build" / "model"
    staged.mkdir(parents=True, exist_ok=True)
    for name in ("model.onnx", "labels.json", "preprocess.json"):
        (staged / name).write_bytes((model_dir / name).read_bytes())
    image = docker.build_score_image("amlvision/score:test-baked", target="with-model", MODEL_DIR="build/model")
    baked = docker.run_container(image)
    try:
        docker.wait_ready(baked)
        response = requests.post(f"{baked.url}/score", data=test_files[0].read_bytes(),
                                 headers={"Content-Type": "image/png"}, timeout=30)  # fmt: skip
        assert response.status_code == 200, response.text
        assert response.json()["predictions"][0]["label"] == predict_answer[0]["label"]
    finally:
        baked.remove()


def test_an_unreadable_model_mount_fails_with_a_clear_log_message(score_image, model_dir, tmp_path):
    private = tmp_path / "private-model"
    shutil.copytree(model_dir, private)
    private.chmod(0o700)  # root-only, like a folder made by mkdtemp
    failing = docker.run_container(score_image, volumes={private: MODEL_MOUNT})
    try:
        deadline = time.monotonic() + 90
        while failing.inspect()["State"]["Running"] and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not failing.inspect()["State"]["Running"], "server started without a readable model"
        assert "make the model folder world-readable" in failing.logs()
    finally:
        failing.remove()


def test_a_corrupt_model_stops_the_container_at_once_naming_the_file(score_image, model_dir, tmp_path):
    broken = tmp_path / "corrupt-model"
    shutil.copytree(model_dir, broken)
    data = (model_dir / "model.onnx").read_bytes()
    (broken / "model.onnx").write_bytes(data[: len(data) // 3])  # an interrupted copy
    for path in (broken, *broken.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    started = time.monotonic()
    failing = docker.run_container(score_image, volumes={broken: MODEL_MOUNT})
    try:
        while failing.inspect()["State"]["Running"] and time.monotonic() - started < 60:
            time.sleep(0.5)
        state = failing.inspect()["State"]
        logs = failing.logs()
        assert not state["Running"], "the server kept restarting workers with a corrupt model:\n" + logs[-3000:]
        assert state["ExitCode"] != 0
        assert f"{MODEL_MOUNT}/model.onnx: cannot load the ONNX model" in logs
        assert "std::system_error" not in logs
        assert logs.count("Invoking user's init function") <= 2  # WORKER_COUNT=2 tries, no restart loop
    finally:
        failing.remove()


def test_container_keeps_answering_while_20_slow_clients_hold_connections(container, test_files):
    """Issue 15 F3: 20 connections dripping headers or body (1 byte / 1.5 s) for 15 s."""
    png = test_files[0].read_bytes()
    latencies = []
    with hostile.SlowClients(container.port, count=20, seconds=15) as slow:
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = requests.post(f"{container.url}/score", data=png, headers={"Content-Type": "image/png"},
                                     timeout=30)  # fmt: skip
            latencies.append((time.perf_counter() - started) * 1e3)
            assert response.status_code == 200, response.text
            time.sleep(0.1)
    assert len(slow.results) == 20
    p50, p99 = np.percentile(latencies, [50, 99])
    print(f"\n{len(latencies)} normal requests beside 20 slow clients: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
          f"(load average {os.getloadavg()[0]:.1f})")  # fmt: skip
    assert len(latencies) >= 30 and p99 < 1000, latencies


def test_container_logs_the_packages_lines_and_stops_cleanly(container):
    """Issue 15 F10/F11; runs last: stops the module's container with SIGTERM, as `docker stop` does."""
    bad = requests.post(f"{container.url}/score", data=b'{"image": "@@@"}',
                        headers={"Content-Type": "application/json"}, timeout=30)  # fmt: skip
    assert bad.status_code == 400
    subprocess.run(["docker", "stop", "--time", "20", container.id], capture_output=True, check=True)
    logs = container.logs()
    assert "amlvision.serving - loaded /var/azureml-models/model" in logs
    assert f"amlvision.serving - request {bad.headers['x-request-id']}: 400 'image': not valid base64" in logs
    assert "Traceback" not in logs and "std::system_error" not in logs and "terminate called" not in logs, logs[-3000:]
    assert container.inspect()["State"]["ExitCode"] == 0
