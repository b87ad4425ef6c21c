"""`amlvision serve` (azmlinfsrv + score.py without Docker) and `amlvision call` against it, on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from amlvision.testing.docker import free_port
from tests.serving import http_checks
from tests.serving.conftest import TEST_LIMITS, assert_same_predictions


@pytest.fixture(scope="module")
def local_server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, **TEST_LIMITS, "OMP_NUM_THREADS": "1", "AMLVISION_ORT_THREADS": "1"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "amlvision", "serve", str(model_dir), "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(url + "/", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or worker still booting
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"amlvision serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # gunicorn master and its workers
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with pytest.raises(requests.ConnectionError):  # stopped means the port no longer answers
        requests.get(url + "/", timeout=2)


def test_serve_answers_like_predict(local_server, test_files, predict_answer):
    http_checks.check_predictions_match_predict(local_server, test_files, predict_answer)


def test_serve_refuses_bad_requests_with_400_and_keeps_serving(local_server, bad_request_list, test_files):
    http_checks.check_bad_requests_get_400_and_serving_continues(local_server, bad_request_list, test_files[0])


def test_serve_publishes_swagger(local_server):
    http_checks.check_swagger(local_server)


def test_get_on_score_explains_how_to_call(local_server):
    response = requests.get(local_server + "/score", timeout=10)
    assert response.status_code == 405
    assert "POST" in response.json()["message"]


@pytest.mark.parametrize("mode", ["base64", "array"])
def test_call_cli_prints_the_servers_answer(local_server, test_files, predict_answer, mode):
    done = subprocess.run(
        [sys.executable, "-m", "amlvision", "call", local_server, *map(str, test_files), "--as", mode,
         "--json", "--batch", "7", "--key", "not-checked-locally"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)["predictions"]
    assert [a["file"] for a in answer] == [str(p) for p in test_files]
    assert_same_predictions(answer, predict_answer)


def test_call_cli_reports_http_errors(local_server, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"truncated")
    done = subprocess.run([sys.executable, "-m", "amlvision", "call", local_server + "/score", str(bad)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert "HTTP 400" in done.stderr and "cannot decode image" in done.stderr
