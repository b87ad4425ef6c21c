"""Fixtures for the submit tests: a small real CIFAR-10 subset (copied files, so a container can read them)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# One quick epoch: small model input, one thread per process, no augmentation randomness in the log.
TRAIN_ARGS = ["--model", "fast", "--epochs", "1", "--threads", "1", "--device", "cpu", "--progress", "log"]


def submit(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m amlvision submit ARGS`` in the repository, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "amlvision", "submit", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def run_record(result: subprocess.CompletedProcess) -> dict:
    """The run.json of the run a submit command reported on its last line."""
    last = [line for line in result.stdout.splitlines() if line.startswith("run amlvision_")][-1]
    run_id = last.split()[1].rstrip(":")
    return json.loads((REPO / "runs" / run_id / "run.json").read_text())


@pytest.fixture
def cleanup_runs():
    """Remove the run folders a test created (they are git-ignored, but tests should not pile them up)."""
    created: list[Path] = []
    yield created
    for path in created:
        shutil.rmtree(path, ignore_errors=True)
