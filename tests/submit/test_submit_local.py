"""amlvision submit --target local: train.py for real, outputs in runs/<run-id>/outputs/."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from amlvision.azure.v1 import load_run_configuration
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
    result = submit("--target", "local", "--quiet", "--nproc-per-node", "2", "--", "--data", str(small_cifar),
                    "--batch-size", "32", *TRAIN_ARGS)
    record = run_record(result)
    cleanup_runs.append(Path(record["run_dir"]))
    assert result.returncode == 0, (Path(record["run_dir"]) / "logs" / "std_log.txt").read_text()
    assert record["command"][1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    log = (Path(record["run_dir"]) / "logs" / "std_log.txt").read_text()
    assert log.count("held-out test accuracy") == 1
    assert (Path(record["run_dir"]) / "outputs" / "model.onnx").is_file()


def test_outputs_flag_and_wrong_target_are_refused() -> None:
    result = submit("--target", "local", "--", "--outputs", "elsewhere")
    assert result.returncode == 2 and "do not pass --outputs" in result.stderr
    result = submit("--target", "local", "--runconfig", "cpu-cluster")
    assert result.returncode == 2 and "targets 'cpu-cluster', not 'local'" in result.stderr


def test_train_command_and_data_mounts(tmp_path: Path) -> None:
    rc = load_run_configuration(REPO, "local")
    cmd = train_command(rc, ["--epochs", "2"], "runs/x/outputs", nproc_per_node=1, python=sys.executable)
    assert cmd == [sys.executable, "train.py", "--data", "cifar10", "--model", "fast", "--epochs", "2", "--outputs",
                   "runs/x/outputs"]
    with pytest.raises(SubmitError, match="at least 1"):
        train_command(rc, [], "o", nproc_per_node=0)
    data = tmp_path / "data"
    data.mkdir()
    mounts = data_mounts(["--data", str(data), f"--config={data}", "relative/path", str(REPO / "train.py")], REPO)
    assert mounts == ["-v", f"{data}:{data}:ro"]
