"""`amlvision serve` (azmlinfsrv + score.py without Docker) and `amlvision call` against it, on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from amlvision.serving.local import LocalServer, ServerStartError
from tests.serving import http_checks
from tests.serving.conftest import TEST_LIMITS, assert_same_predictions


@pytest.fixture(scope="module")
def local_server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**TEST_LIMITS, "OMP_NUM_THREADS": "1", "AMLVISION_ORT_THREADS": "1"}
    server = LocalServer(model_dir, env=env, log_path=log)
    try:
        server.start()
    except ServerStartError as exc:
        pytest.fail(str(exc))
    try:
        yield server.url
    finally:
        server.stop()
    with pytest.raises(requests.ConnectionError):  # stopped means the port no longer answers
        requests.get(server.url + "/", timeout=2)


def test_local_server_reports_a_server_that_cannot_start(tmp_path):
    # serve checks the model before it starts the server and exits non-zero (issue 15, F7):
    # the error must carry the cause from the server's log, and the server must be gone.
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "model.onnx").write_bytes(b"not an onnx model")
    (broken / "labels.json").write_text('["a", "b"]')
    (broken / "preprocess.json").write_text("{}")
    server = LocalServer(broken, startup_timeout=20, log_path=tmp_path / "serve.log")
    with pytest.raises(ServerStartError, match="exited with 2") as caught:
        server.start()
    assert "preprocess.json: invalid or missing field" in str(caught.value)
    assert server.process is None and not server.answers()


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
