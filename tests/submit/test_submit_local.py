"""amlvision submit --target local: train.py for real, outputs in runs/<run-id>/outputs/."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from amlvision.azure.v1 import load_run_configuration
from amlvision.submit import images
from amlvision.submit.command_line import SubmitError, train_command
from amlvision.submit.docker_run import data_mounts

from .conftest import REPO, TRAIN_ARGS, run_record, submit


def test_local_run_writes_model_and_metrics(small_cifar: Path, cleanup_runs: list) -> None:
    result = submit("--target", "local", "--quiet", "--", "--data", str(small_cifar), *TRAIN_ARGS)
    record = run_record(result)
    cleanup_runs.append(Path(record["run_dir"]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert record["status"] == "Completed" and record["exit_code"] == 0 and record["target"] == "local"
    outputs = Path(record["run_dir"]) / "outputs"
    assert Path(record["run_dir"]).parent == REPO / "runs"
    for name in ("model.onnx", "labels.json", "preprocess.json", "metrics.json", "model.pt"):
        assert (outputs / name).is_file(), name
    metrics = json.loads((outputs / "metrics.json").read_text())
    assert metrics["num_samples"] == 200 and 0.0 <= metrics["accuracy"] <= 1.0
    assert json.loads((outputs / "labels.json").read_text())[0] == "airplane"
    log = (Path(record["run_dir"]) / "logs" / "std_log.txt").read_text()
    assert "held-out test accuracy" in log
    assert record["command"][1:3] == ["train.py", "--data"] and record["command"][-2:] == ["--outputs", str(outputs)]


def test_failing_run_reports_exit_code_and_log(cleanup_runs: list) -> None:
    result = submit("--target", "local", "--quiet", "--", "--data", "/nonexistent/images", *TRAIN_ARGS)
    record = run_record(result)
    cleanup_runs.append(Path(record["run_dir"]))
    assert result.returncode != 0
    assert record["status"] == "Failed" and record["exit_code"] == result.returncode
    log = (Path(record["run_dir"]) / "logs" / "std_log.txt").read_text()
    assert "/nonexistent/images" in log
    assert f"failed with exit code {result.returncode}" in result.stderr and "/nonexistent/images" in result.stderr


def test_two_processes_under_torchrun_log_once(small_cifar: Path, cleanup_runs: list) -> None:
    result = submit(
        "--target",
        "local",
        "--quiet",
        "--nproc-per-node",
        "2",
        "--",
        "--data",
        str(small_cifar),
        "--batch-size",
        "32",
        *TRAIN_ARGS,
    )
    record = run_record(result)
    cleanup_runs.append(Path(record["run_dir"]))
    assert result.returncode == 0, (Path(record["run_dir"]) / "logs" / "std_log.txt").read_text()
    assert record["command"][1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    log = (Path(record["run_dir"]) / "logs" / "std_log.txt").read_text()
    assert log.count("held-out test accuracy") == 1
    assert (Path(record["run_dir"]) / "outputs" / "model.onnx").is_file()


def test_outputs_flag_and_wrong_target_are_refused() -> None:
    before = set((REPO / "runs").glob("*")) if (REPO / "runs").is_dir() else set()
    result = submit("--target", "local", "--", "--outputs", "elsewhere")
    assert result.returncode == 2 and "do not pass --outputs" in result.stderr
    assert set((REPO / "runs").glob("*")) - before == set()  # refused before a run folder exists
    result = submit("--target", "local", "--runconfig", "cpu-cluster")
    assert result.returncode == 2 and "targets 'cpu-cluster', not 'local'" in result.stderr


def test_train_command_and_data_mounts(tmp_path: Path) -> None:
    rc = load_run_configuration(REPO, "local")
    cmd = train_command(rc, ["--epochs", "2"], "runs/x/outputs", nproc_per_node=1, python=sys.executable)
    assert cmd == [
        sys.executable,
        "train.py",
        "--data",
        "cifar10",
        "--model",
        "fast",
        "--epochs",
        "2",
        "--outputs",
        "runs/x/outputs",
    ]
    with pytest.raises(SubmitError, match="at least 1"):
        train_command(rc, [], "o", nproc_per_node=0)
    data = tmp_path / "data"
    data.mkdir()
    mounts = data_mounts(["--data", str(data), f"--config={data}", "relative/path", str(REPO / "train.py")], REPO)
    assert mounts == ["-v", f"{data}:{data}:ro"]


def test_image_tag_follows_the_environment(tmp_path: Path) -> None:
    for part in (images.DOCKERFILE, images.PIP_LIST_SCRIPT, images.CONDA_FILE):
        (tmp_path / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / part, tmp_path / part)
    first = images.image_tag(tmp_path, "some/base:1")
    assert first == images.image_tag(tmp_path, "some/base:1")  # deterministic: an unchanged image is reused
    assert first.startswith("amlvision/train:")
    assert images.image_tag(tmp_path, "some/base:2") != first
    assert images.image_tag(tmp_path, "some/base:1", "wheelhouse") != first
    conda = tmp_path / images.CONDA_FILE
    conda.write_text(conda.read_text().replace("tqdm>=4.66", "tqdm>=4.67"))
    assert images.image_tag(tmp_path, "some/base:1") != first


def test_wheel_folder_is_served_read_only_over_http(tmp_path: Path) -> None:
    (tmp_path / "pkg-1.0-py3-none-any.whl").write_bytes(b"wheel bytes")
    with images.serve_folder(tmp_path, "127.0.0.1") as url:
        listing = urllib.request.urlopen(url, timeout=5).read().decode()
        assert "pkg-1.0-py3-none-any.whl" in listing  # pip --find-links reads this listing
        assert urllib.request.urlopen(url + "pkg-1.0-py3-none-any.whl", timeout=5).read() == b"wheel bytes"
        request = urllib.request.Request(url + "new.whl", data=b"x", method="PUT")
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=5)
    assert not (tmp_path / "new.whl").exists()


def test_conda_pip_list_script_checks_python(tmp_path: Path) -> None:
    spec = tmp_path / "env.yml"
    spec.write_text("dependencies:\n  - python=2.7\n  - pip:\n      - numpy\n")
    result = subprocess.run(
        [sys.executable, str(REPO / "docker" / "conda_pip_list.py"), str(spec)], capture_output=True, text=True
    )
    assert result.returncode != 0 and "asks for python=2.7" in result.stderr
    spec.write_text(
        f"dependencies:\n  - python={sys.version_info.major}.{sys.version_info.minor}\n"
        "  - pip:\n      - numpy>=1.26\n      - torch==2.14.1\n"
    )
    result = subprocess.run(
        [sys.executable, str(REPO / "docker" / "conda_pip_list.py"), str(spec)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["numpy>=1.26", "torch==2.14.1"]
