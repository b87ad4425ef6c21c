"""amlvision submit --target docker: a real Docker engine, the training image built from conda_dependencies.yml
on the locally built base image, train.py in a container, outputs and logs collected in runs/<run-id>/.

The first run builds the image (a few minutes: torch and its CUDA libraries are installed from a wheel
folder prepared on the host); later runs reuse it (the tag is a hash of everything in it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from amlvision.submit.images import download_wheelhouse, ensure_training_image
from amlvision.testing.docker import ensure_base_image, ensure_engine

from .conftest import REPO, TRAIN_ARGS, run_record, submit

pytestmark = pytest.mark.docker
WHEELHOUSE = REPO / ".whl" / "train"


@pytest.fixture(scope="module")
def image_options() -> list[str]:
    ensure_engine()
    base = ensure_base_image()
    download_wheelhouse(REPO, WHEELHOUSE)
    ensure_training_image(REPO, base_image=base, wheelhouse=WHEELHOUSE)  # built once, outside the timed runs
    return ["--base-image", base, "--wheelhouse", str(WHEELHOUSE)]


def test_docker_run_collects_model_and_metrics(image_options: list[str], small_cifar: Path, cleanup_runs: list) -> None:
    result = submit("--target", "docker", "--quiet", *image_options, "--", "--data", str(small_cifar), *TRAIN_ARGS)
    record = run_record(result)
    cleanup_runs.append(Path(record["run_dir"]))
    log = (Path(record["run_dir"]) / "logs" / "std_log.txt").read_text()
    assert result.returncode == 0, log
    assert record["status"] == "Completed" and record["target"] == "docker"
    assert record["details"]["image"].startswith("amlvision/train:")
    assert record["command"][:2] == ["docker", "run"]
    outputs = Path(record["run_dir"]) / "outputs"
    for name in ("model.onnx", "labels.json", "preprocess.json", "metrics.json"):
        assert (outputs / name).is_file(), name
        assert (outputs / name).stat().st_uid == os.getuid()  # written as the calling user
    metrics = json.loads((outputs / "metrics.json").read_text())
    assert metrics["num_samples"] == 200
    assert "held-out test accuracy" in log


def test_failing_docker_run_reports_exit_code_and_log(image_options: list[str], cleanup_runs: list) -> None:
    result = submit("--target", "docker", "--quiet", *image_options, "--", "--data", "/nonexistent/images", *TRAIN_ARGS)
    record = run_record(result)
    cleanup_runs.append(Path(record["run_dir"]))
    assert result.returncode not in (0, 125, 126, 127)  # train.py's failure, not Docker's
    assert record["status"] == "Failed" and record["exit_code"] == result.returncode
    log = (Path(record["run_dir"]) / "logs" / "std_log.txt").read_text()
    assert "/nonexistent/images" in log
    assert f"failed with exit code {result.returncode}" in result.stderr
